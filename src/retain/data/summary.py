"""What a loaded dataset holds, as a JSON-ready dict and as rich tables on the console."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retain.data.frames import Dataset
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
        ``tables`` (rows and file per table), ``customers`` (``total``, ``derived``),
        ``transactions`` (``first``, ``last`` timestamps as ISO text or ``None``,
        ``returns_share`` = share of rows with a negative amount, ``duplicates_dropped``),
        ``interactions`` (``types``: count per type, most frequent first), ``fingerprint`` and
        ``warnings``.
    """
    transactions = dataset.transactions
    rows = len(transactions)
    first, last = transactions["timestamp"].min(), transactions["timestamp"].max()
    returns = int((transactions["amount"] < 0).sum())
    types = dataset.interactions["type"].value_counts(sort=True)
    return {
        "tables": {
            name: {"rows": len(getattr(dataset, name)), "file": dataset.files.get(name, "")}
            for name in ("customers", "transactions", "interactions")
        },
        "customers": {"total": len(dataset.customers), "derived": dataset.derived_customers},
        "transactions": {
            "first": None if pd.isna(first) else first.isoformat(),
            "last": None if pd.isna(last) else last.isoformat(),
            "returns_share": returns / rows if rows else 0.0,
            "duplicates_dropped": dataset.duplicates_dropped,
        },
        "interactions": {"types": {str(kind): int(count) for kind, count in types.items()}},
        "fingerprint": dataset.fingerprint,
        "warnings": list(dataset.warnings),
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
