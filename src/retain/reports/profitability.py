"""The report's profitability section, from a folder ``retain profitability`` wrote.

Which customers and segments create profit and which destroy it: the whale curve (cumulative
profit against customers ranked by profit, with the share of customers who destroy profit), the
P&L by segment and by acquisition channel, CLV : CAC and payback by channel (guidance for
acquisition spend), and what the unprofitable customers share (the drivers of unprofitability).
It reads only ``summary.json`` and the ``by_<group>.parquet`` tables of that folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["find_profitability", "load_profitability", "profitability_section"]

#: Folder of the profitability tables beside a list's default folder
#: (``serving/output/<as_of>`` -> ``serving/profitability/<as_of>``).
SIBLING = "profitability"
DPI = 100
TABLES = ("segment", "acquisition_channel", "value_tier", "lifecycle_stage", "region")


def find_profitability(list_dir: str | os.PathLike) -> Path | None:
    """The profitability folder of a list: its ``profitability/`` sub-folder, else the folder
    of the same cutoff beside the lists' folder; ``None`` when neither has a summary."""
    folder = Path(list_dir)
    for candidate in (folder / SIBLING, folder.parent.parent / SIBLING / folder.name):
        if (candidate / "summary.json").is_file():
            return candidate
    return None


def load_profitability(folder: str | os.PathLike) -> dict[str, Any]:
    """``summary`` and the ``tables`` by group of a profitability folder."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    tables = {
        group: pd.read_parquet(folder / f"by_{group}.parquet")
        for group in TABLES
        if (folder / f"by_{group}.parquet").is_file()
    }
    return {"summary": summary, "tables": tables}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _money(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:,.0f}"


def _ratio(value: object, pattern: str = "{:.1f}") -> str:
    number = _number(value)
    return "—" if number is None else pattern.format(number)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _table(headers: list[str], rows: list[list[str]], numeric: str) -> str:
    def cells(values, tag):
        return "".join(
            f'<{tag} class="num">{value}</{tag}>' if kind == "n" else f"<{tag}>{value}</{tag}>"
            for value, kind in zip(values, numeric, strict=True)
        )

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    head = cells([_e(name) for name in headers], "th")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _image(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def _whale_image(curve: Mapping[str, list[float]], currency: str) -> str:
    shares = np.asarray(curve["customer_share"], dtype=float) * 100
    profit = np.asarray(curve["profit_share"], dtype=float) * 100
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    ax.plot(shares, profit, color="#1f5f8b", linewidth=2)
    ax.axhline(100, color="#888888", linewidth=1, linestyle="--")
    peak = int(np.argmax(profit))
    ax.scatter([shares[peak]], [profit[peak]], color="#b23b3b", zorder=3)
    ax.annotate(f"peak {profit[peak]:.0f}%", (shares[peak], profit[peak]),
                textcoords="offset points", xytext=(6, 6))  # fmt: skip
    ax.set_xlabel("Customers ranked by profit to date, most profitable first (%)")
    ax.set_ylabel("Cumulative share of profit (%)")
    ax.set_title("Whale curve")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _image(fig, "Whale curve: cumulative share of profit against customers ranked by profit")


def _group_table(table: pd.DataFrame, group: str, label: str, currency: str) -> str:
    unit = f" ({currency})" if currency else ""
    predicted = "predicted_future_profit" in table
    headers = [label, "Customers", "Unprofitable", f"Revenue{unit}", f"Margin{unit}",
               f"Cost to serve{unit}", f"Acquisition{unit}", f"Profit to date{unit}",
               "Share of profit"]  # fmt: skip
    if predicted:
        headers.append(f"Predicted profit{unit}")
    rows = []
    for row in table.to_dict("records"):
        cells = [
            _e(row[group]), f"{int(row['customers']):,}",
            _ratio(row["unprofitable_share"] * 100, "{:.0f}%"), _money(row["revenue"]),
            _money(row["margin"]), _money(row["cost_to_serve"]), _money(row["acquisition_cost"]),
            _money(row["profit_to_date"]), _ratio(_pct(row["profit_share"]), "{:.0f}%"),
        ]  # fmt: skip
        if predicted:
            cells.append(_money(row["predicted_future_profit"]))
        rows.append(cells)
    return _table(headers, rows, "t" + "n" * (len(headers) - 1))


def _pct(value: object) -> float | None:
    number = _number(value)
    return None if number is None else number * 100


def _acquisition_table(table: pd.DataFrame, currency: str) -> str:
    unit = f" ({currency})" if currency else ""
    headers = ["Acquisition channel", "Customers", f"Acquisition cost per customer{unit}",
               "CLV : CAC", "Paid back", "Median payback (months)"]  # fmt: skip
    rows = [
        [
            _e(row["acquisition_channel"]), f"{int(row['customers']):,}",
            _money(row["acquisition_cost"] / row["customers"]), _ratio(row.get("clv_to_cac")),
            _ratio(_pct(row["paid_back_share"]), "{:.0f}%"),
            _ratio(row["payback_months_median"], "{:.0f}"),
        ]
        for row in table.to_dict("records")
    ]  # fmt: skip
    return _table(headers, rows, "tnnnnn")


def _drivers(drivers: Mapping[str, Any], currency: str) -> str:
    if not drivers:
        return '<p class="na">Drivers of unprofitability not available (no loss, or no profit).</p>'
    means = drivers.get("means", {})
    rows = [
        [_e(name.replace("_", " ")), _ratio(values["unprofitable"], "{:,.2f}"),
         _ratio(values["profitable"], "{:,.2f}")]
        for name, values in means.items()
    ]  # fmt: skip
    parts = [
        "<h3>What the unprofitable customers share</h3>",
        "<p>Means per customer, customers with a loss to date against the others"
        + (f" (money in {_e(currency)})" if currency else "")
        + ".</p>",
        _table(["", "Unprofitable", "Profitable"], rows, "tnn"),
    ]
    for group, lifts in drivers.get("over_representation", {}).items():
        top = [f"{_e(name)} ×{lift:.2f}" for name, lift in list(lifts.items())[:3] if lift > 1]
        if top:
            label = group.replace("_", " ")
            parts.append(f"<p>Over-represented among them by {label}: {', '.join(top)}.</p>")
    return "".join(parts)


def profitability_section(profitability: Mapping[str, Any] | None) -> str:
    """The HTML of the profitability section (a note when there are no tables)."""
    if not profitability:
        return (
            '<section><h2>Profitability</h2><p class="na">No profitability tables for this '
            "cutoff: run <code>retain profitability</code>.</p></section>"
        )
    summary, tables = profitability["summary"], profitability["tables"]
    currency = str(summary.get("currency") or "")
    totals = summary.get("totals", {})
    curve = summary.get("whale_curve", {})
    unit = f" {currency}" if currency else ""
    headline = (
        f"<p>{summary.get('customers', 0):,} customers: profit to date "
        f"<strong>{_money(totals.get('profit_to_date'))}{_e(unit)}</strong> "
        f"(margin {_money(totals.get('margin'))}, cost to serve "
        f"{_money(totals.get('cost_to_serve'))}, acquisition "
        f"{_money(totals.get('acquisition_cost'))}). "
        f"<strong>{_ratio(_pct(summary.get('unprofitable_share')), '{:.1f}%')}</strong> of "
        f"customers destroy profit; the most profitable 20% earn "
        f"{_ratio(_pct(curve.get('top_20_percent_profit_share')), '{:.0f}%')} of it and the "
        f"curve peaks at {_ratio(_pct(curve.get('peak_profit_share')), '{:.0f}%')}.</p>"
    )
    if "predicted_unprofitable_share" in summary:
        headline += (
            f"<p>Predicted future profit: {_money(totals.get('predicted_future_profit'))}"
            f"{_e(unit)}; {_ratio(_pct(summary['predicted_unprofitable_share']), '{:.1f}%')} "
            "of customers are predicted to lose money over the CLV horizon, and "
            f"{_ratio(_pct(summary.get('lifetime_unprofitable_share')), '{:.1f}%')} over their "
            "lifetime (profit to date plus predicted future profit).</p>"
        )
    parts = ["<section><h2>Profitability</h2>", headline]
    if curve.get("customer_share"):
        parts.append(_whale_image(curve, currency))
    labels = {"segment": "Segment", "acquisition_channel": "Acquisition channel"}
    for group, label in labels.items():
        if group in tables:
            parts.append(f"<h3>P&amp;L by {label.lower()}</h3>")
            parts.append(_group_table(tables[group], group, label, currency))
    if "acquisition_channel" in tables:
        parts.append("<h3>CLV : CAC and payback by acquisition channel</h3>")
        parts.append(_acquisition_table(tables["acquisition_channel"], currency))
    parts.append(_drivers(summary.get("drivers", {}), currency))
    parts.extend(f'<p class="na">{_e(note)}</p>' for note in summary.get("notes", []))
    parts.append("</section>")
    return "".join(parts)
