"""Real-data shapes made from the simulator: what a retailer's raw export looks like.

A real purchase log often differs from the simulated world in ways that used to break retain:
only a transactions table, months rather than years of history, customers who all joined in
one quarter, order values of cents or of hundreds of thousands, dates without a time of day,
integer customer ids, a whitespace-separated text file. :func:`reshape` turns a simulated world
into such a dataset (its truth kept in step, so the oracle still applies) and :func:`write_shape`
writes it as Parquet, CSV or a whitespace-separated text file with its mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Shape", "reshape", "write_shape"]

#: Days after the world's start within which a one-cohort dataset's customers joined.
COHORT_DAYS = 91


@dataclass(frozen=True)
class Shape:
    """A reshaped dataset: its tables (absent ones are ``None``) and the matching truth."""

    transactions: pd.DataFrame
    customers: pd.DataFrame | None
    interactions: pd.DataFrame | None
    truth: pd.DataFrame
    notes: dict = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name."""
        named = {
            "customers": self.customers,
            "transactions": self.transactions,
            "interactions": self.interactions,
        }
        return {name: frame for name, frame in named.items() if frame is not None}


def _integer_ids(ids: pd.Series) -> pd.Series:
    """``C0000123`` -> ``123`` (the simulator numbers customers from 1)."""
    return ids.str.slice(1).astype("int64")


def reshape(
    world,
    *,
    transactions_only: bool = False,
    one_cohort: bool = False,
    customers: int | None = None,
    amount_scale: float = 1.0,
    date_only: bool = False,
    integer_ids: bool = False,
) -> Shape:
    """A simulated world in a real export's shape.

    Parameters
    ----------
    world : retain.data.simulator.World
        The simulated world (its ``start`` and ``end`` set the history's length).
    transactions_only : bool, default=False
        Drop the customers and interactions tables.
    one_cohort : bool, default=False
        Keep only customers whose first purchase falls in the first :data:`COHORT_DAYS` days
        of history (one acquisition cohort).
    customers : int, optional
        Keep the first ``customers`` of those (in id order).
    amount_scale : float, default=1.0
        Multiply order values (and margins) by this: 0.01 for cents, 1000 for B2B orders.
    date_only : bool, default=False
        Timestamps cut to the day (midnight).
    integer_ids : bool, default=False
        Customer ids as integers (``C0000123`` becomes ``123``).
    """
    truth = world.truth
    keep = truth["customer_id"]
    if one_cohort:
        birth = truth["birth"]
        keep = keep[birth < pd.Timestamp(world.start) + pd.Timedelta(days=COHORT_DAYS)]
    if customers is not None:
        keep = keep.sort_values().head(customers)
    chosen = set(keep)

    def kept(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["customer_id"].isin(chosen)].reset_index(drop=True)

    transactions = kept(world.transactions)
    if amount_scale != 1.0:
        transactions = transactions.assign(
            amount=transactions["amount"] * amount_scale,
            margin=transactions["margin"] * amount_scale,
        )
    tables = {
        "transactions": transactions,
        "customers": None if transactions_only else kept(world.customers),
        "interactions": None if transactions_only else kept(world.interactions),
        "truth": kept(truth),
    }
    if date_only:
        for name in ("transactions", "interactions"):
            if tables[name] is not None:
                frame = tables[name]
                tables[name] = frame.assign(timestamp=frame["timestamp"].dt.floor("D"))
    if integer_ids:
        for name, frame in tables.items():
            if frame is not None:
                tables[name] = frame.assign(customer_id=_integer_ids(frame["customer_id"]))
    if amount_scale != 1.0:
        # the oracle's expected spend and margin follow the order values
        scaled = tables["truth"].copy()
        scaled["expected_order_value"] *= amount_scale
        scaled.attrs = world.truth.attrs
        tables["truth"] = scaled
    tables["truth"].attrs = world.truth.attrs
    notes = {"customers": len(chosen), "start": str(world.start), "end": str(world.end)}
    return Shape(notes=notes, **tables)


def write_shape(shape: Shape, folder: Path, *, layout: str = "parquet") -> Path | None:
    """Write a shape into ``folder``; return the mapping file it needs (or ``None``).

    ``layout``: ``"parquet"`` (the contract's names), ``"csv"`` (canonical CSV files) or
    ``"whitespace"``: transactions only, as a header-less ``purchases.txt`` of id, date
    (``YYYYMMDD``), quantity and amount separated by spaces, read through ``mapping.yaml``
    (``header: false``, columns by position).

    The truth goes to ``truth.parquet`` so that training logs the oracle as on simulated data.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shape.truth.to_parquet(folder / "truth.parquet")
    if layout == "parquet":
        for name, frame in shape.tables.items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        return None
    if layout == "csv":
        for name, frame in shape.tables.items():
            frame.to_csv(folder / f"{name}.csv", index=False)
        return None
    if layout != "whitespace":
        raise ValueError(f"layout must be parquet, csv or whitespace, got {layout!r}")
    transactions = shape.transactions
    # as real exports such as CDNOW's come: no header line, id, date, quantity and amount
    # separated by runs of spaces, dates as YYYYMMDD
    text = pd.DataFrame(
        {
            "ID": transactions["customer_id"].astype(str).str.rjust(10),
            "date": transactions["timestamp"].dt.strftime("%Y%m%d"),
            "quantity": "1",
            "dollars": transactions["amount"].map(lambda value: f"{value:9.2f}"),
        }
    )
    lines = [" ".join(row) for row in text.itertuples(index=False)]
    (folder / "purchases.txt").write_text("\n".join(lines) + "\n")
    mapping = folder / "mapping.yaml"
    mapping.write_text(
        "transactions:\n"
        "  file: purchases.txt\n"
        "  header: false\n"
        "  separator: whitespace\n"
        "  columns: {customer_id: 1, timestamp: 2, quantity: 3, amount: 4}\n"
        '  timestamp_format: "%Y%m%d"\n'
    )
    return mapping
