"""What a loaded dataset holds, as a JSON-ready dict and as rich tables on the console."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retain.data.frames import Dataset
from retain.data.referrals import REFERRER
from retain.data.schemas import LOG_TABLES
from retain.progress import console as progress_console

__all__ = ["print_summary", "summarize"]


def summarize(dataset: Dataset) -> dict:
    """Describe a dataset in numbers that can be written as JSON.

    Parameters
    ----------
    dataset : Dataset
        From :func:`~retain.data.load_dataset`.

    Returns
    -------
    dict
        ``tables`` (rows and file per table), ``customers`` (``total``, ``derived``, and
        ``referred`` when some have a referrer), ``transactions`` (``first``, ``last``
        timestamps as ISO text or ``None``, ``returns_share`` = share of rows with a negative
        amount, ``duplicates_dropped``), ``interactions`` (``types``: count per type, most
        frequent first), ``fingerprint`` and ``warnings``. With a ``campaigns`` table, also
        ``campaigns`` (``campaigns``, ``first``, ``last``, rows per ``groups``, treated rows per
        ``actions``, total ``cost``); with a ``costs`` table, ``costs`` (``first``, ``last``,
        ``total``, and ``kinds``: rows and amount per kind, largest amount first). The logs
        appear in ``tables`` only when the folder has them.
    """
    transactions = dataset.transactions
    rows = len(transactions)
    first, last = transactions["timestamp"].min(), transactions["timestamp"].max()
    returns = int((transactions["amount"] < 0).sum())
    types = dataset.interactions["type"].value_counts(sort=True)
    logs = [name for name in LOG_TABLES if dataset.files.get(name)]
    summary = {
        "tables": {
            name: {"rows": len(getattr(dataset, name)), "file": dataset.files.get(name, "")}
            for name in ("customers", "transactions", "interactions", *logs)
        },
        "customers": {"total": len(dataset.customers), "derived": dataset.derived_customers},
        "transactions": {
            "first": _iso(first),
            "last": _iso(last),
            "returns_share": returns / rows if rows else 0.0,
            "duplicates_dropped": dataset.duplicates_dropped,
        },
        "interactions": {"types": {str(kind): int(count) for kind, count in types.items()}},
    }
    referred = int(dataset.customers[REFERRER].notna().sum())
    if referred:
        summary["customers"]["referred"] = referred
    if "campaigns" in logs:
        summary["campaigns"] = _campaigns(dataset.campaigns)
    if "costs" in logs:
        summary["costs"] = _costs(dataset.costs)
    return {**summary, "fingerprint": dataset.fingerprint, "warnings": list(dataset.warnings)}


def _iso(moment: pd.Timestamp) -> str | None:
    return None if pd.isna(moment) else moment.isoformat()


def _campaigns(campaigns: pd.DataFrame) -> dict:
    groups = campaigns["group"].value_counts()
    treated = campaigns.loc[campaigns["group"] == "treatment", "action"].value_counts()
    return {
        "campaigns": int(campaigns["campaign_id"].nunique()),
        "first": _iso(campaigns["timestamp"].min()),
        "last": _iso(campaigns["timestamp"].max()),
        "groups": {name: int(groups.get(name, 0)) for name in ("treatment", "control")},
        "actions": {str(action): int(count) for action, count in treated.items()},
        "cost": float(campaigns["cost"].sum()),
    }


def _costs(costs: pd.DataFrame) -> dict:
    kinds = costs.groupby("kind", sort=False)["amount"].agg(["size", "sum"])
    kinds = kinds.sort_values(["sum", "size"], ascending=False, kind="stable")
    return {
        "first": _iso(costs["timestamp"].min()),
        "last": _iso(costs["timestamp"].max()),
        "total": float(costs["amount"].sum()),
        "kinds": {
            str(kind): {"rows": int(row["size"]), "amount": float(row["sum"])}
            for kind, row in kinds.iterrows()
        },
    }


def print_summary(summary: dict, console: Console | None = None) -> None:
    """Print a :func:`summarize` result as rich tables.

    Parameters
    ----------
    summary : dict
        As returned by :func:`summarize`.
    console : rich.console.Console, optional
        Where to print (default: :data:`retain.progress.console`, stderr).
    """
    console = console or progress_console
    tables = Table(title="Data", title_justify="left")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    tables.add_column("file", overflow="fold")
    for name, table in summary["tables"].items():
        tables.add_row(name, f"{table['rows']:,}", escape(table["file"]) or "(absent)")
    console.print(tables)

    facts = Table(title="Contents", title_justify="left", show_header=False)
    facts.add_column("what")
    facts.add_column("value", overflow="fold")
    customers, transactions = summary["customers"], summary["transactions"]
    facts.add_row("customers", f"{customers['total']:,} ({customers['derived']:,} derived)")
    if "referred" in customers:
        facts.add_row("referred by a customer", f"{customers['referred']:,}")
    facts.add_row("first transaction", transactions["first"] or "-")
    facts.add_row("last transaction", transactions["last"] or "-")
    facts.add_row("returns share", f"{transactions['returns_share']:.1%}")
    facts.add_row("duplicates dropped", f"{transactions['duplicates_dropped']:,}")
    facts.add_row("fingerprint", summary["fingerprint"])
    console.print(facts)

    types = summary["interactions"]["types"]
    if types:
        kinds = Table(title="Interactions", title_justify="left")
        kinds.add_column("type")
        kinds.add_column("count", justify="right")
        for kind, count in types.items():
            kinds.add_row(escape(kind), f"{count:,}")
        console.print(kinds)
    if "campaigns" in summary:
        console.print(_campaigns_table(summary["campaigns"]))
    if "costs" in summary:
        console.print(_costs_table(summary["costs"]))


def _campaigns_table(campaigns: dict) -> Table:
    table = Table(title="Campaigns", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("campaigns", f"{campaigns['campaigns']:,}")
    table.add_row("first contact", campaigns["first"] or "-")
    table.add_row("last contact", campaigns["last"] or "-")
    for group, count in campaigns["groups"].items():
        table.add_row(f"{group} rows", f"{count:,}")
    for action, count in campaigns["actions"].items():
        table.add_row(f"treated with {escape(action)}", f"{count:,}")
    table.add_row("cost", f"{campaigns['cost']:,.2f}")
    return table


def _costs_table(costs: dict) -> Table:
    table = Table(title="Costs", title_justify="left")
    table.add_column("kind")
    table.add_column("rows", justify="right")
    table.add_column("amount", justify="right")
    for kind, row in costs["kinds"].items():
        table.add_row(escape(kind), f"{row['rows']:,}", f"{row['amount']:,.2f}")
    table.add_row("total", "", f"{costs['total']:,.2f}", style="bold")
    return table
