"""The retention report: one self-contained HTML file built from a retention-priority list.

It reads only what ``retain score`` writes (see :mod:`retain.serving.contract`):
``retention_priority.parquet`` and ``summary.json`` beside it. The page opens with what a
retention team needs (key figures, where the value at risk lies, whom to call first and why),
what the contacts are expected to add and what they did (where the gains come from, the
control groups, the measured effect per action from ``backtest.json`` beside the list when
``retain backtest --out`` wrote one there, the predicted incremental-profit curve and the
"sleeping dogs" not to contact), then a model card for data scientists (models, metrics,
calibration, gain, feature versions, data fingerprint, drift). Charts are PNGs embedded as
``data:`` URIs and the stylesheet is inline, so the file can be mailed or archived on its own
and prints on A4 landscape.

Every piece of text taken from the list or the summary is HTML-escaped. Optional parts of the
summary that are absent (no model card, no drift check) are reported as "not available".
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from retain import plots
from retain.atomic import atomic_file, check_output_file, claim
from retain.errors import RetainError
from retain.reports._template import CSS, PAGE
from retain.reports.profitability import (
    find_profitability,
    load_profitability,
    profitability_section,
)
from retain.reports.uplift import profit_curve, profit_curve_plot, uplift_validation
from retain.serving.contract import LIST_FILE, REASON_COLUMNS, REPORT_FILE, SUMMARY_FILE

__all__ = ["REPORT_COLUMNS", "default_report_path", "load_list", "render_report", "report_html"]

#: List columns the report needs (a subset of :data:`retain.serving.contract.LIST_COLUMNS`).
REPORT_COLUMNS = (
    "rank",
    "customer_id",
    "selected",
    "churn_probability",
    "clv",
    "value_at_risk",
    "recommended_action",
    "action_cost",
    "expected_net_gain",
    "segment",
    "value_tier",
    *REASON_COLUMNS,
)
TIER_ORDER = ("high", "medium", "low", "potential")
#: Drift table: the features with the largest PSI shown (drifted ones are always shown).
DRIFT_ROWS = 15
DPI = 100
#: File mode of the written report (readable by the group and others, like a plain write).
REPORT_MODE = 0o644
NA = "—"

REASON_METHODS = {
    "treeshap": "TreeSHAP (exact contributions)",
    "saabas": "Saabas (approximate contributions, for very large lists)",
}
#: Headline metrics of the model card: (key, label, format).
CHURN_METRICS = (
    ("roc_auc", "ROC-AUC", "{:.3f}"),
    ("pr_auc", "PR-AUC (average precision)", "{:.3f}"),
    ("brier", "Brier score", "{:.4f}"),
    ("ece", "Expected calibration error", "{:.4f}"),
    ("log_loss", "Log loss", "{:.4f}"),
    ("lift_at_top", "Lift at top {top}", "{:.2f}×"),
    ("capture_at_top", "Capture at top {top}", "{:.1%}"),
    ("positive_rate", "Churn rate (validation)", "{:.1%}"),
    ("rows", "Validation rows", "{:,.0f}"),
)
CLV_METRICS = (
    ("gini", "Normalized Gini", "{:.3f}"),
    ("spearman", "Spearman rank correlation", "{:.3f}"),
    ("decile_mape", "Decile MAPE", "{:.1%}"),
    ("total_error", "Relative error of the total", "{:+.1%}"),
    ("rows", "Validation rows", "{:,.0f}"),
)


# --------------------------------------------------------------------------- reading


def load_list(list_path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a retention-priority list and its summary.

    Parameters
    ----------
    list_path : path-like
        ``retention_priority.parquet`` or the folder holding it; ``summary.json`` is read from
        the same folder.

    Returns
    -------
    frame : pandas.DataFrame
        The list, sorted by ``rank``.
    summary : dict
        The parsed ``summary.json``.

    Raises
    ------
    RetainError
        If a file is missing or unreadable, or the list lacks columns of :data:`REPORT_COLUMNS`.
    """
    path = Path(list_path)
    list_file = path / LIST_FILE if path.is_dir() else path
    summary_file = list_file.parent / SUMMARY_FILE
    if not list_file.is_file():
        raise RetainError(
            f"retention-priority list not found: {list_file} (run `retain score` first)"
        )
    if not summary_file.is_file():
        raise RetainError(f"summary of the list not found: {summary_file} (expected beside it)")
    try:
        frame = pd.read_parquet(list_file)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise RetainError(f"cannot read the list {list_file}: {error}") from error
    missing = [column for column in REPORT_COLUMNS if column not in frame.columns]
    if missing:
        raise RetainError(f"the list {list_file} lacks column(s): {', '.join(missing)}")
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RetainError(f"cannot read the summary {summary_file}: {error}") from error
    if not isinstance(summary, dict):
        raise RetainError(f"the summary {summary_file} is not a JSON object")
    return frame.sort_values("rank", kind="stable").reset_index(drop=True), summary


#: What ``retain backtest --out <list folder>`` writes beside the list.
BACKTEST_FILE = "backtest.json"
#: Sleeping dogs shown in the report's sample.
SLEEPING_DOG_SAMPLE = 10


def _backtest_beside(list_path: str | os.PathLike) -> dict[str, Any] | None:
    """The backtest of the list written beside it, when there is a readable one."""
    path = Path(list_path)
    folder = path if path.is_dir() else path.parent
    try:
        payload = json.loads((folder / BACKTEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def default_report_path(list_path: str | os.PathLike) -> Path:
    """``report.html`` beside the list (``list_path`` is the list's folder or its Parquet file)."""
    path = Path(list_path)
    return (path if path.is_dir() or not path.suffix else path.parent) / REPORT_FILE


def render_report(
    list_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    top: int = 50,
    profitability: str | os.PathLike | None = None,
    final_folder: str | os.PathLike | None = None,
) -> Path:
    """Write the HTML report of a retention-priority list, atomically.

    Parameters
    ----------
    list_path : path-like
        ``retention_priority.parquet`` or its folder (with ``summary.json`` beside it).
    out : path-like
        The HTML file to write; parent folders are created. A previous file is replaced only
        once the new one is complete, and only if it is a report retain wrote.
    top : int, default=50
        Number of customers, by rank, in the priority table.
    profitability : path-like, optional
        A folder ``retain profitability`` wrote, shown in a profitability section; default:
        the list folder's ``profitability/``, else ``serving/profitability/<as_of>`` beside
        ``serving/output/<as_of>`` (see :func:`retain.reports.profitability.find_profitability`);
        no section without one.
    final_folder : path-like, optional
        Where the list's folder will be once written, when ``list_path`` is a temporary
        folder (``retain score`` regenerates a report before it swaps the new list in): the
        default profitability folder is looked for from there. Default: the list's folder.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    OutputError
        ``out`` is a folder, or a file that is not a report retain wrote.
    """
    target = check_output_file(out, "HTML report", recognise=is_report)
    frame, summary = load_list(list_path)
    folder = Path(list_path) if Path(list_path).is_dir() else Path(list_path).parent
    if profitability is not None:
        found: Path | None = Path(profitability)
    else:
        found = find_profitability(Path(final_folder) if final_folder is not None else folder)
    tables = load_profitability(found) if found is not None else None
    text = report_html(
        frame, summary, top=top, backtest=_backtest_beside(list_path), profitability=tables,
        uplift=uplift_validation(summary, folder),
    )  # fmt: skip
    with atomic_file(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(REPORT_MODE)  # mkstemp creates 0600; a report is meant to be shared
    claim(target)  # written into a list folder: part of it from now on
    return target


def is_report(path: Path) -> bool:
    """Whether ``path`` is an HTML report retain wrote (the only file ``--out`` may replace)."""
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace")
    return head.startswith("<!DOCTYPE html>") and (
        '<meta name="generator" content="retain">' in head
        or "<title>Retention priority list" in head  # reports written before the generator tag
    )


# --------------------------------------------------------------------------- formatting


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _float(value: object) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _money(value: object) -> str:
    number = _float(value)
    return NA if number is None else f"{number:,.2f}"


def _in(label: str, currency: str) -> str:
    """A label with the currency: ``Value at risk (USD)``."""
    return f"{label} ({currency})" if currency else label


def _count(value: object) -> str:
    number = _float(value)
    return NA if number is None else f"{number:,.0f}"


def _percent(value: object, digits: int = 1) -> str:
    number = _float(value)
    return NA if number is None else f"{number:.{digits}%}"


def _fmt(value: object, pattern: str) -> str:
    number = _float(value)
    return NA if number is None else pattern.format(number)


def _get(mapping: object, *keys: str) -> Any:
    """``mapping[k1][k2]...`` or ``None`` when any level is absent or not a mapping."""
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _image(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def _na(what: str) -> str:
    return f'<p class="na">{_e(what)} not available.</p>'


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    classes: str,
    *,
    foot: Sequence[str] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; ``rows`` and ``foot`` cells are already-escaped HTML.

    ``classes`` holds one letter per column: ``n`` numeric (right-aligned), ``t`` text,
    ``i`` identifier (monospace), ``r`` reasons list.
    """
    names = {"n": "num", "t": "", "i": "id", "r": "reasons"}
    kinds = [names[letter] for letter in classes]

    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="{kind}">{value}</{tag}>' if kind else f"<{tag}>{value}</{tag}>"
            for value, kind in zip(values, kinds, strict=True)
        )

    head = cells([_e(h) for h in headers], "th")
    body = []
    for index, row in enumerate(rows):
        klass = row_classes[index] if row_classes else ""
        attribute = f' class="{klass}"' if klass else ""
        body.append(f"<tr{attribute}>{cells(row, 'td')}</tr>")
    footer = f"<tfoot><tr>{cells(foot, 'td')}</tr></tfoot>" if foot else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>{footer}</table>"


# --------------------------------------------------------------------------- sections


def _totals(frame: pd.DataFrame, summary: Mapping) -> dict[str, Any]:
    """Header figures from the summary; from the list where the summary lacks them."""
    chosen = frame[frame["selected"].astype(bool)]
    derived = {
        "customers_active": len(frame),
        "selected": len(chosen),
        "value_at_risk": frame["value_at_risk"].sum(),
        "clv": frame["clv"].sum(),
        "selected_value_at_risk": chosen["value_at_risk"].sum(),
        "selected_expected_net_gain": chosen["expected_net_gain"].sum(),
        "selected_cost": chosen["action_cost"].sum(),
    }
    counts, totals = summary.get("counts"), summary.get("totals")
    result = {}
    for key, value in derived.items():
        given = _get(counts, key) if key in ("customers_active", "selected") else None
        if given is None:
            given = _get(totals, key)
        result[key] = value if _float(given) is None else given
    return result


def _header(frame: pd.DataFrame, summary: Mapping, figures: Mapping[str, Any]) -> str:
    as_of = summary.get("as_of")
    if as_of is None and len(frame) and "as_of" in frame.columns:
        as_of = frame["as_of"].iloc[0]
    rendered = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"List generated {_e(summary.get('generated_at') or NA)} · report rendered {rendered}",
        f"{_count(figures['customers_active'])} active customers · "
        f"{_count(figures['selected'])} selected for contact · "
        f"value at risk {_money(figures['value_at_risk'])} · "
        f"expected net gain of the selected {_money(figures['selected_expected_net_gain'])} · "
        f"cost {_money(figures['selected_cost'])}",
    ]
    selection = summary.get("selection")
    horizons = summary.get("horizons")
    limits = []
    if _float(_get(selection, "capacity")) is not None:
        limits.append(f"capacity {_count(selection['capacity'])} customers")
    if _float(_get(selection, "budget")) is not None:
        limits.append(f"budget {_money(selection['budget'])}")
    if _float(_get(horizons, "churn_days")) is not None:
        limits.append(f"churn horizon {_count(horizons['churn_days'])} days")
    if _float(_get(horizons, "clv_days")) is not None:
        limits.append(f"CLV horizon {_count(horizons['clv_days'])} days")
    if _float(_get(horizons, "active_days")) is not None:
        limits.append(f"active = a purchase in the last {_count(horizons['active_days'])} days")
    if summary.get("pseudonymized"):
        limits.append("customer ids pseudonymized")
    if summary.get("currency"):
        limits.append(f"amounts in {summary['currency']}")
    if limits:
        lines.append(_e(" · ".join(limits)))
    optimality = _optimality(selection)
    if optimality:
        lines.append(_e(optimality))
    paragraphs = "".join(f"<p>{line}</p>" for line in lines)
    notes = _get(selection, "notes")
    if isinstance(notes, list) and notes:
        paragraphs += "".join(f'<p class="status-warn">{_e(note)}</p>' for note in notes)
    return (
        f'<header class="page"><h1>Retention priority list — as of {_e(as_of or NA)}</h1>'
        f"{paragraphs}</header>"
    )


def _optimality(selection: object) -> str:
    """How good the selection provably is, in a sentence (empty when the summary lacks it)."""
    bound = _float(_get(selection, "lp_bound"))
    share = _float(_get(selection, "optimality_gap_share"))
    if _get(selection, "optimal") is True:
        return "The selection is optimal: no other choice within the limits gains more."
    if bound is not None and share is not None:
        return (
            f"The selection gains at least {1 - share:.2%} of the best possible within the "
            f"limits (linear-programming bound {bound:,.2f})."
        )
    return ""


def _kpis(figures: Mapping[str, Any], currency: str = "") -> str:
    active = _float(figures["customers_active"]) or 0.0
    selected = _float(figures["selected"]) or 0.0
    cost = _float(figures["selected_cost"])
    gain = _float(figures["selected_expected_net_gain"])
    total_risk = _float(figures["value_at_risk"])
    chosen_risk = _float(figures["selected_value_at_risk"])
    share_risk = chosen_risk / total_risk if chosen_risk is not None and total_risk else None
    roi = gain / cost if gain is not None and cost else None
    cards = [
        ("Active customers", _count(active), "scored at the cutoff"),
        (
            "Selected for contact",
            _count(selected),
            f"{_percent(selected / active)} of active" if active else "",
        ),
        (_in("Value at risk", currency), _money(total_risk), "all active customers"),
        (
            _in("Value at risk, selected", currency),
            _money(chosen_risk),
            f"{_percent(share_risk)} of the total" if share_risk is not None else "",
        ),
        (_in("Expected net gain", currency), _money(gain), "of the selected, after cost"),
        (
            _in("Campaign cost", currency),
            _money(cost),
            f"net gain per unit cost {_fmt(roi, '{:.1f}')}" if roi is not None else "",
        ),
    ]
    html_cards = "".join(
        f'<div class="kpi"><div class="label">{_e(label)}</div>'
        f'<div class="value">{value}</div><div class="sub">{_e(sub)}</div></div>'
        for label, value, sub in cards
    )
    return (
        f'<section class="summary"><h2>Key figures</h2><div class="kpis">{html_cards}</div>'
        + "</section>"
    )


def _by_group(
    frame: pd.DataFrame, column: str, label: str, order: Sequence[str] = (), currency: str = ""
) -> str:
    if frame.empty:
        return f"<h3>Value at risk by {_e(label)}</h3>{_na('Breakdown')}"
    work = frame.assign(
        _group=frame[column].astype("string").fillna("(none)"),
        _chosen=frame["selected"].astype(bool),
        _chosen_gain=frame["expected_net_gain"].where(frame["selected"].astype(bool), 0.0),
    )
    work["_chosen_risk"] = work["value_at_risk"].where(work["_chosen"], 0.0)
    table = work.groupby("_group", sort=False).agg(
        customers=("customer_id", "size"),
        selected=("_chosen", "sum"),
        churn=("churn_probability", "mean"),
        value_at_risk=("value_at_risk", "sum"),
        chosen_risk=("_chosen_risk", "sum"),
        gain=("_chosen_gain", "sum"),
    )
    ranked = [g for g in order if g in table.index]
    rest = table.drop(index=ranked).sort_values("value_at_risk", ascending=False).index
    table = table.loc[[*ranked, *rest]]
    total = float(table["value_at_risk"].sum())
    rows = [
        (
            _e(group),
            _count(row.customers),
            _count(row.selected),
            _percent(row.churn),
            _money(row.value_at_risk),
            _percent(row.value_at_risk / total if total else None),
            _money(row.gain),
        )
        for group, row in table.iterrows()
    ]
    foot = (
        "Total",
        _count(table["customers"].sum()),
        _count(table["selected"].sum()),
        _percent(frame["churn_probability"].mean()),
        _money(total),
        _percent(1.0 if total else None),
        _money(table["gain"].sum()),
    )
    html_table = _table(
        (
            label.capitalize(),
            "Customers",
            "Selected",
            "Mean churn",
            _in("Value at risk", currency),
            "Share",
            _in("Net gain, selected", currency),
        ),
        rows,
        "tnnnnnn",
        foot=foot,
    )
    chart = _image(
        plots.group_bar_plot(
            table["value_at_risk"], table["chosen_risk"], title=f"Value at risk by {label}",
            xlabel=_in("Value at risk", currency),
        ),
        f"Bar chart of value at risk by {label}, the selected customers' part highlighted",
    )  # fmt: skip
    return (
        f"<h3>Value at risk by {_e(label)}</h3>"
        f'<div class="grid2"><div class="scroll">{html_table}</div>{chart}</div>'
    )


def _risk_section(frame: pd.DataFrame, currency: str = "") -> str:
    parts = [
        _by_group(frame, "segment", "segment", currency=currency),
        _by_group(frame, "value_tier", "value tier", TIER_ORDER, currency),
    ]
    if frame.empty:
        histogram = _na("Churn-probability distribution")
    else:
        histogram = _image(
            plots.probability_histogram(frame["churn_probability"], frame["selected"]),
            "Distribution of churn probabilities, all customers and the selected",
        )
    probability = frame["churn_probability"]
    facts = (
        '<dl class="facts">'
        f"<dt>Median churn probability</dt><dd>{_percent(probability.median())}</dd>"
        f"<dt>Customers above 50%</dt><dd>{_count((probability > 0.5).sum())}</dd>"
        f"<dt>Customers above 80%</dt><dd>{_count((probability > 0.8).sum())}</dd>"
        f"<dt>Mean, selected</dt>"
        f"<dd>{_percent(probability[frame['selected'].astype(bool)].mean())}</dd>"
        "</dl>"
    )
    parts.append(
        f'<h3>Churn-probability distribution</h3><div class="grid2">{histogram}'
        f"<div>{facts}</div></div>"
    )
    return f'<section class="risk"><h2>Where the value at risk is</h2>{"".join(parts)}</section>'


def _actions_section(frame: pd.DataFrame, currency: str = "") -> str:
    chosen = frame[frame["selected"].astype(bool)]
    title = "<h2>Recommended actions for the selected customers</h2>"
    if chosen.empty:
        return (
            f'<section class="actions">{title}<p class="na">No customer is selected.</p></section>'
        )
    table = (
        chosen.groupby(chosen["recommended_action"].astype("string").fillna("(none)"))
        .agg(
            customers=("customer_id", "size"),
            unit_cost=("action_cost", "mean"),
            cost=("action_cost", "sum"),
            value_at_risk=("value_at_risk", "sum"),
            gain=("expected_net_gain", "sum"),
        )
        .sort_values(["customers", "gain"], ascending=False)
    )
    rows = [
        (
            _e(action),
            _count(row.customers),
            _money(row.unit_cost),
            _money(row.cost),
            _money(row.value_at_risk),
            _money(row.gain),
        )
        for action, row in table.iterrows()
    ]
    foot = (
        "Total",
        _count(table["customers"].sum()),
        "",
        _money(table["cost"].sum()),
        _money(table["value_at_risk"].sum()),
        _money(table["gain"].sum()),
    )
    html_table = _table(
        (
            "Action",
            "Customers",
            _in("Cost each", currency),
            _in("Total cost", currency),
            _in("Value at risk", currency),
            _in("Expected net gain", currency),
        ),  # fmt: skip
        rows,
        "tnnnnn",
        foot=foot,
    )
    return f'<section class="actions">{title}{html_table}</section>'


def _measured_effects(backtest: Mapping[str, Any] | None, currency: str) -> str:
    """The backtest's treated-minus-control effect per action, or how to get it."""
    rows = _get(backtest, "experiment", "rows") if backtest else None
    if not rows:
        return (
            '<p class="na">Measured effect per action not available yet: once the horizon '
            "after the cutoff has passed, run <code>retain backtest --list &lt;this folder&gt; "
            "--out &lt;this folder&gt;</code> and <code>retain report</code> again.</p>"
        )
    cells = []
    for row in rows:
        if not isinstance(row, Mapping) or row.get("decile") not in (0, None):
            continue

        def interval(value: str, low: str, high: str, pattern: str, row=row) -> str:
            return (
                f"{_fmt(row.get(value), pattern)} [{_fmt(row.get(low), pattern)}, "
                f"{_fmt(row.get(high), pattern)}]"
            )

        cells.append(
            (
                _e(row.get("action")),
                _count(row.get("treated")),
                _count(row.get("control")),
                _money(row.get("predicted_incremental_margin")),
                _e(interval("realised_incremental_margin", "margin_low", "margin_high",
                            "{:,.2f}")),
                _fmt(row.get("predicted_churn_effect"), "{:+.1%}"),
                _e(interval("realised_churn_effect", "churn_low", "churn_high", "{:+.1%}")),
            )
        )  # fmt: skip
    table = _table(
        ("Action", "Treated", "Control", _in("Predicted margin", currency),
         _in("Realised margin [95% interval]", currency), "Predicted churn",
         "Realised churn [95% interval]"),
        cells, "tnnnnnn",
    )  # fmt: skip
    return (
        "<p>Treated minus control per customer (by intention to treat; 95% intervals from the "
        "normal approximation with Welch's standard error).</p>" + table
    )


def _experiment_section(
    frame: pd.DataFrame,
    summary: Mapping[str, Any],
    backtest: Mapping | None,
    currency: str,
    uplift: Mapping[str, Any] | None = None,
) -> str:
    """What the contacts are expected to add, where that comes from, and what they did."""
    parts = ["<h2>What contacts add</h2>"]
    gains = summary.get("gains")
    if isinstance(gains, Mapping):
        klass = "" if gains.get("measured") else ' class="warn"'
        parts.append(f"<p{klass}>Gains: {_e(gains.get('source'))}. {_e(gains.get('note'))}.</p>")
    else:
        parts.append('<p class="na">Where the gains come from is not recorded.</p>')
    if uplift is not None:
        parts.append(_uplift_validation(uplift, currency))
    experiment = summary.get("experiment")
    if isinstance(experiment, Mapping) and experiment.get("by_action"):
        rows = [
            (_e(action), _count(_get(counts, "treatment")), _count(_get(counts, "control")))
            for action, counts in experiment["by_action"].items()
        ]
        parts.append(
            f"<h3>Control groups ({_percent(experiment.get('control_share'), 0)} of each "
            "action's selected customers, not contacted)</h3>"
            + _table(("Action", "Treatment (contact)", "Control (hold out)"), rows, "tnn")
        )
    parts.append("<h3>Measured effect per action</h3>" + _measured_effects(backtest, currency))
    if "expected_net_gain" in frame and len(frame):
        curve = profit_curve(frame["expected_net_gain"].to_numpy(float))
        peak = int(curve["profit"].to_numpy().argmax())
        capacity = _get(summary, "selection", "capacity")
        capacity = int(capacity) if isinstance(capacity, int | float) else None
        parts.append(
            "<h3>Predicted incremental profit</h3>"
            f"<p>Contacting customers in order of expected net gain, the predicted profit "
            f"peaks at {_count(peak)} customers ({_money(curve['profit'][peak])}"
            f"{' ' + _e(currency) if currency else ''}); each contact beyond costs more than "
            "it is expected to add.</p>"
            + _image(profit_curve_plot(curve, capacity, currency), "Incremental profit curve")
        )
    parts.append("<h3>Sleeping dogs: do not contact</h3>" + _sleeping_dogs(frame, currency))
    return f'<section class="experiment">{"".join(parts)}</section>'


def _uplift_validation(uplift: Mapping[str, Any], currency: str) -> str:
    """The uplift model's Qini curve and coefficients on its out-of-time validation campaign."""
    version = _e(uplift["version"])
    title = f"<h3>The uplift model on its validation campaign (retain-uplift v{version})</h3>"
    qini = uplift.get("qini") or {}
    if "model" not in qini:
        why = uplift.get("missing") or "its run has no Qini coefficient"
        return title + f'<p class="na">Its validation measures are not available ({_e(why)}).</p>'
    unit = f" {_e(currency)}" if currency else ""
    others = [f"{name.replace('_', ' ')} {_money(qini[name])}" for name in qini if name != "model"]
    text = (
        f"<p>Out of time, on the latest campaign it was not trained on, the model's ranking "
        f"has a Qini coefficient of {_money(qini['model'])}{unit}: the margin its targeting "
        "adds over random targeting, averaged over every depth of targeting (treated minus "
        "control). The same for the other rankings: " + ", ".join(others) + ".</p>"
    )
    adjusted = uplift.get("adjusted_qini") or {}
    if "model" in adjusted:
        baselines = [name for name in ("value_at_risk", "churn_probability") if name in adjusted]
        rivals = [f"{name.replace('_', ' ')} {_money(adjusted[name])}" for name in baselines]
        text += (
            f"<p>Regression-adjusted (the registry's gate: the margin less what the customer "
            f"was expected to spend without a contact), the model's Qini coefficient is "
            f"{_money(adjusted['model'])}{unit}; " + ", ".join(rivals) + ". One campaign's "
            "outcomes are noisy: read the curves as evidence, not as a forecast.</p>"
        )
    curves = uplift.get("curves")
    if curves is None or len(curves) == 0:
        why = uplift.get("missing") or "not logged by the run"
        return title + text + f'<p class="na">The Qini curve is not available ({_e(why)}).</p>'
    return title + text + _image(plots.qini_curves_plot(curves, qini), "Validation Qini curves")


def _sleeping_dogs(frame: pd.DataFrame, currency: str) -> str:
    if "sleeping_dog" not in frame:
        return '<p class="na">Not available for this list.</p>'
    dogs = frame[frame["sleeping_dog"].fillna(False).astype(bool)]
    if dogs.empty:
        return (
            "<p>None predicted: no contact is expected to push a customer away (the "
            "playbook's prior save rates never predict harm; an uplift model can find "
            "customers a contact would push away).</p>"
        )
    sample = dogs.sort_values("expected_net_gain", kind="stable").head(SLEEPING_DOG_SAMPLE)
    rows = [
        (_e(row.customer_id), _percent(row.churn_probability), _money(row.value_at_risk),
         _e(row.recommended_action), _money(row.expected_net_gain))
        for row in sample.itertuples(index=False)
    ]  # fmt: skip
    return (
        f"<p>{_count(len(dogs))} customers are predicted to react to every eligible contact "
        "by spending less (negative uplift): leave them alone. The most affected:</p>"
        + _table(
            ("Customer", "Churn risk", _in("Value at risk", currency), "Least bad action",
             _in("Expected net gain", currency)),
            rows, "innnn",
        )
    )  # fmt: skip


def _reasons(row: Mapping) -> str:
    items = []
    for column in REASON_COLUMNS:
        value = row[column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        text = str(value).strip()
        if text and text != "<NA>":
            items.append(f"<li>{_e(text)}</li>")
    return f"<ol>{''.join(items)}</ol>" if items else NA


def _priority_section(frame: pd.DataFrame, top: int, currency: str = "") -> str:
    shown = frame.head(top)
    title = f"<h2>Top {len(shown):,} customers by priority</h2>"
    if shown.empty:
        return f'<section class="priority">{title}{_na("The list is empty; rows")}</section>'
    headers = (
        "Rank", "Customer", "Contact", "Churn probability", "CLV", "Value at risk",
        "Expected net gain", "Action", "Reasons", "Segment", "Tier",
    )  # fmt: skip
    # the referrals' profit to date, where the data have referrals (older lists lack it)
    influence = "influence_value" in shown.columns and bool(shown["influence_value"].ne(0).any())
    if influence:
        headers = (*headers, "Influence value")
    rows = []
    for record in shown.to_dict("records"):
        extra = (_money(record["influence_value"]),) if influence else ()
        rows.append(
            (
                _count(record["rank"]),
                _e(record["customer_id"]),
                '<span class="yes">yes</span>' if bool(record["selected"]) else "no",
                _percent(record["churn_probability"]),
                _money(record["clv"]),
                _money(record["value_at_risk"]),
                _money(record["expected_net_gain"]),
                _e(record["recommended_action"]),
                _reasons(record),
                _e(record["segment"]),
                _e(record["value_tier"]),
                *extra,
            )
        )
    body = _table(headers, rows, "nitnnnntrtt" + ("n" if influence else ""))
    money = f"Money in {_e(currency)}" if currency else "Money in the list's currency"
    note = (
        '<p class="note">The selected customers come first, in contact order (by expected net '
        "gain of the recommended action); then the others with a positive gain, then everyone "
        f"else by value at risk. {money}; CLV over the CLV horizon."
        + (
            " Influence value: the profit to date of the customers they referred."
            if influence
            else ""
        )
        + "</p>"
    )
    return f'<section class="priority">{title}{note}<div class="scroll">{body}</div></section>'


# --------------------------------------------------------------------------- model card


def _models_table(models: object) -> str:
    if not isinstance(models, Mapping) or not models:
        return _na("Model versions")
    rows = []
    for role, info in models.items():
        info = info if isinstance(info, Mapping) else {}
        rows.append(
            (
                _e(role),
                _e(info.get("name") or NA),
                _e(info.get("version") or NA),
                f"<code>{_e(info.get('run_id') or NA)}</code>",
            )
        )
    return _table(("Role", "Registered model", "Version", "MLflow run"), rows, "ttnt")


def _by_model(keys: Iterable[str], *sources: object) -> dict[str, dict[str, float]]:
    """Flat validation metrics grouped by the model they belong to.

    Training logs ``<model>_<metric>`` (``model_roc_auc``, ``logistic_roc_auc``, ...; ``model``
    is the champion itself); a plain ``<metric>`` belongs to ``model`` too. Earlier sources win.
    """
    suffixes = sorted(keys, key=len, reverse=True)  # the longest metric name matches first
    grouped: dict[str, dict[str, float]] = {}
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for raw, value in source.items():
            name, number = str(raw).removeprefix("valid."), _float(value)
            if number is None:
                continue
            for key in suffixes:
                if name == key:
                    owner = "model"
                elif name.endswith((f"_{key}", f".{key}")):
                    owner = name[: -len(key) - 1]
                else:
                    continue
                grouped.setdefault(owner, {}).setdefault(key, number)
                break
    return grouped


def _metrics_table(
    spec: Sequence[tuple[str, str, str]], *sources: object, top: str = "10%"
) -> str | None:
    """Metrics of the champion (first column) and of the baselines it was compared with."""
    grouped = _by_model([key for key, _, _ in spec], *sources)
    if "model" not in grouped:
        return None
    owners = ["model", *(owner for owner in grouped if owner != "model")]
    rows = []
    for key, label, pattern in spec:
        if key not in grouped["model"]:
            continue
        cells = [_fmt(grouped[owner].get(key), pattern) for owner in owners]
        rows.append((_e(label.format(top=top)), f"<strong>{cells[0]}</strong>", *cells[1:]))
    headers = ["Metric", "Champion", *(owner.replace("_", " ") for owner in owners[1:])]
    table = f'<div class="narrow">{_table(headers, rows, "t" + "n" * len(owners))}</div>'
    if "oracle" in owners:
        table += (
            '<p class="note">oracle: the true probabilities of the simulator (simulated data '
            "only), the best any model could do.</p>"
        )
    return table


def _calibration_chart(rows: object) -> str:
    try:
        table = pd.DataFrame(list(rows)) if isinstance(rows, Sequence) else None
        if table is None or table.empty:
            return _na("Calibration chart")
        return _image(plots.calibration_table_plot(table), "Calibration: observed vs predicted")
    except (ValueError, TypeError):
        return _na("Calibration chart")


def _gain_chart(gain: object, top_fraction: float) -> str:
    contacted = _get(gain, "share_contacted")
    captured = _get(gain, "share_captured")
    try:
        if not contacted or not captured:
            return _na("Cumulative gain chart")
        figure = plots.gain_curve_plot(contacted, captured, top_fraction)
    except (ValueError, TypeError):
        return _na("Cumulative gain chart")
    return _image(figure, "Cumulative gain curve")


def _drift(drift: object) -> str:
    psi = _get(drift, "psi")
    if not isinstance(drift, Mapping) or not isinstance(psi, Mapping) or not psi:
        return _na("Drift check")
    threshold = _float(drift.get("threshold"))
    drifted = [str(name) for name in drift.get("drifted") or []]
    values = {str(k): _float(v) for k, v in psi.items()}
    max_psi = _float(drift.get("max_psi"))
    if max_psi is None:
        max_psi = max((v for v in values.values() if v is not None), default=None)
    limit = _fmt(threshold, "{:.2f}")
    if drifted:
        status = (
            f'<p class="status-warn">{len(drifted):,} feature(s) drifted (PSI above {limit}): '
            f"{_e(', '.join(drifted))}. Maximum PSI {_fmt(max_psi, '{:.3f}')}.</p>"
        )
    else:
        status = (
            f'<p class="status-ok">No feature drifted (PSI threshold {limit}); maximum PSI '
            f"{_fmt(max_psi, '{:.3f}')}.</p>"
        )
    if drift.get("strict"):
        status += '<p class="note">Strict mode: scoring refuses to run when a feature drifts.</p>'
    ordered = sorted(values, key=lambda k: -(values[k] if values[k] is not None else -1.0))
    shown = ordered[:DRIFT_ROWS]
    shown += [k for k in ordered[DRIFT_ROWS:] if k in drifted]
    rows, classes = [], []
    for name in shown:
        is_drifted = name in drifted
        flag = '<span class="badge">drifted</span>' if is_drifted else ""
        rows.append((_e(name), _fmt(values[name], "{:.3f}"), flag))
        classes.append("drifted" if is_drifted else "")
    note = ""
    if len(ordered) > len(shown):
        note = f'<p class="note">{len(ordered) - len(shown):,} more feature(s) below these.</p>'
    table = _table(("Feature", "PSI", ""), rows, "tnt", row_classes=classes)
    return f"{status}{table}{note}"


def _facts(mapping: object, what: str) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return _na(what)
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in mapping.items())
    return f'<dl class="facts">{items}</dl>'


def _model_card(summary: Mapping) -> str:
    models = summary.get("models")
    card = summary.get("model_card")
    churn_card = _get(card, "churn")
    top_fraction = _float(_get(churn_card, "top_fraction")) or 0.1
    top = f"{top_fraction:.0%}"
    churn_metrics = _metrics_table(
        CHURN_METRICS, _get(churn_card, "metrics"), _get(models, "churn", "metrics"), top=top
    )
    clv_metrics = _metrics_table(
        CLV_METRICS, _get(card, "clv", "metrics"), _get(models, "clv", "metrics")
    )
    method = summary.get("reasons_method")
    parts = [
        "<h2>Model card</h2>",
        '<p class="note">For data scientists: the models behind the list and how they '
        "performed on their validation data, next to the baselines they were compared with.</p>",
        "<h3>Models</h3>",
        _models_table(models),
        f'<p class="note">Reasons computed with {_e(REASON_METHODS.get(method, method))}.</p>'
        if method
        else "",
        "<h3>Churn model</h3>",
        churn_metrics or _na("Churn metrics"),
        "<h3>CLV model</h3>",
        clv_metrics or _na("CLV metrics"),
        '<div class="grid2"><div><h3>Calibration</h3>',
        _calibration_chart(_get(churn_card, "calibration")),
        "</div><div><h3>Cumulative gain</h3>",
        _gain_chart(_get(churn_card, "gain"), top_fraction),
        "</div></div>",
        '<div class="grid2"><div><h3>Feature views</h3>',
        _facts(summary.get("feature_views"), "Feature view versions"),
        "<h3>Data</h3>",
        _facts(
            {"fingerprint": summary["data_fingerprint"]}
            if summary.get("data_fingerprint")
            else None,
            "Data fingerprint",
        ),
        "</div><div><h3>Drift</h3>",
        _drift(summary.get("drift")),
        "</div></div>",
    ]
    return f'<section class="model-card">{"".join(parts)}</section>'


# --------------------------------------------------------------------------- page


def report_html(
    frame: pd.DataFrame,
    summary: Mapping[str, Any],
    top: int = 50,
    backtest: Mapping[str, Any] | None = None,
    profitability: Mapping[str, Any] | None = None,
    uplift: Mapping[str, Any] | None = None,
) -> str:
    """The report as one HTML document.

    Parameters
    ----------
    frame : pandas.DataFrame
        The retention-priority list (columns of :data:`REPORT_COLUMNS` at least).
    summary : mapping
        The parsed ``summary.json``.
    top : int, default=50
        Number of customers, by rank, in the priority table.
    backtest : mapping, optional
        The list's ``backtest.json``: its treated-minus-control rows are the measured effect
        per action.
    profitability : mapping, optional
        :func:`retain.reports.profitability.load_profitability` of the cutoff's profitability
        folder: a profitability section before the model card.
    uplift : mapping, optional
        :func:`retain.reports.uplift.uplift_validation` of the list: the uplift model's
        validation Qini curve and coefficients in "What contacts add".

    Returns
    -------
    str
        A complete, self-contained HTML page.
    """
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise RetainError(f"top must be a whole number of at least 1; got {top!r}")
    missing = [column for column in REPORT_COLUMNS if column not in frame.columns]
    if missing:
        raise RetainError(f"the list lacks column(s): {', '.join(missing)}")
    frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    figures = _totals(frame, summary)
    currency = str(summary.get("currency") or "")
    body = "\n".join(
        [
            _header(frame, summary, figures),
            _kpis(figures, currency),
            _risk_section(frame, currency),
            _actions_section(frame, currency),
            _experiment_section(frame, summary, backtest, currency, uplift),
            _priority_section(frame, int(top), currency),
            profitability_section(profitability) if profitability is not None else "",
            _model_card(summary),
            "<footer>Made by <code>retain report</code> from the retention-priority list and its "
            "summary. Self-contained: no external resources.</footer>",
        ]
    )
    title = f"Retention priority list — {summary.get('as_of') or ''}".strip(" —")
    return PAGE.substitute(title=_e(title), css=CSS, body=body)
