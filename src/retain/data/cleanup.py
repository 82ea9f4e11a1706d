"""What the data contract tidies up in checked tables, each change counted in a warning.

Three rules, applied in this order to the checked Arrow tables of a data folder (the only
implementation of them; :func:`retain.data.load_dataset` decodes the result to pandas):

1. repeated transactions follow the mapping's ``duplicates`` policy (:func:`find_duplicates`);
2. customers found only in transactions are added, signed up the day of their first purchase
   (:func:`add_derived_customers`);
3. interactions, campaigns and costs of customers in neither table are dropped
   (:func:`known_events`).

The tables hold ``customer_id`` and the text of event tables dictionary-coded (see
:mod:`retain.data.dictionaries`) and may hold extra columns after the canonical ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.dictionaries import KEY, decoded, one_dictionary, present_values
from retain.data.schemas import canonical_arrow
from retain.errors import MAX_SAMPLES

__all__ = [
    "Duplicates",
    "add_derived_customers",
    "drop_duplicates",
    "find_duplicates",
    "known_events",
]


def drop_duplicates(
    transactions: pa.Table, files: dict[str, str], warnings: list[str], policy: str
) -> tuple[pa.Table, int]:
    """Apply the mapping's ``duplicates`` policy (see :func:`find_duplicates`).

    Parameters
    ----------
    transactions : pyarrow.Table
        Checked transactions, with their extra columns (rows identical in every column are
        repeats).
    files : dict of str to str
        Table name -> file read (named in the warnings).
    warnings : list of str
        Receives one warning per kind of repeat found.
    policy : {"auto", "keep", "drop"}
        The mapping's ``transactions.duplicates``.

    Returns
    -------
    transactions : pyarrow.Table
        Without the dropped rows.
    dropped : int
        How many rows were dropped.
    """
    stamps = transactions.column("timestamp").to_numpy().view(np.int64)
    found = find_duplicates(
        stamps if stamps.flags.writeable else stamps.copy(),
        transactions.column("amount").to_numpy(),
        transactions.column("order_id"),
        lambda rows: decoded(_rows(transactions, rows)).to_pandas(),
        policy,
        files["transactions"],
    )
    del stamps
    warnings.extend(found.warnings)
    if found.dropped:
        transactions = present_values(_filter(transactions, ~found.drop), "transactions")
    return transactions, found.dropped


@dataclass(frozen=True)
class Duplicates:
    """Repeated transactions found, and what the policy does with them.

    Attributes
    ----------
    drop : numpy.ndarray of bool
        Rows to drop.
    dropped : int
        How many.
    warnings : tuple of str
        One per kind of repeat found (dropped or kept), counted, with the amount they hold.
    """

    drop: np.ndarray
    dropped: int
    warnings: tuple[str, ...]


def find_duplicates(
    stamps: np.ndarray,
    amounts: np.ndarray,
    order_ids: pa.ChunkedArray,
    rows: Callable[[np.ndarray], pd.DataFrame],
    policy: str,
    file: str,
) -> Duplicates:
    """Find repeated transactions and apply a ``duplicates`` policy.

    Two kinds of repeat, the first row of each kept:

    - an **order** (amount >= 0) whose ``order_id`` an earlier order has: the same order
      exported twice. Returns may share their order's id (several partial returns too), so
      they are never repeats by id;
    - a row **identical** to an earlier one in every column (after parsing), not already a
      repeated order: without an order id, two equal purchases on one day may both be real.

    ``auto`` drops repeated orders and keeps identical rows; ``drop`` drops both; ``keep``
    keeps both. Each kind found is counted in a warning either way.

    Parameters
    ----------
    stamps : numpy.ndarray
        Timestamps as 64-bit integers (may be overwritten).
    amounts : numpy.ndarray of float
        Amounts.
    order_ids : pyarrow.ChunkedArray
        The ``order_id`` column (missing: null).
    rows : callable
        ``rows(positions)``: those rows with every column, as pandas (compared for identity).
    policy : {"auto", "keep", "drop"}
        The mapping's ``transactions.duplicates``.
    file : str
        Named in the warnings.
    """
    repeated = _repeated_orders(amounts, order_ids)
    identical = _identical_rows(stamps, amounts, rows) & ~repeated
    drop = np.zeros(len(amounts), dtype=bool)
    if policy != "keep":
        drop |= repeated
    if policy == "drop":
        drop |= identical
    notes = []
    if repeated.any():
        positions = np.flatnonzero(repeated)
        shown = rows(positions[:100])["order_id"].drop_duplicates().head(MAX_SAMPLES).tolist()
        examples = ", ".join(repr(value) for value in shown)
        verb = "kept" if policy == "keep" else "dropped"
        notes.append(
            f"transactions ({file}): {verb} {_count(len(positions), 'row')} repeating the "
            f"order_id of an earlier order (amount {_total(amounts, positions)}; e.g. "
            f"{examples})" + ("; duplicates: keep in the mapping" if policy == "keep" else "")
        )
    if identical.any():
        positions = np.flatnonzero(identical)
        worth = _total(amounts, positions)
        if policy == "drop":
            notes.append(
                f"transactions ({file}): dropped {_count(len(positions), 'exact duplicate row')} "
                f"(amount {worth}; `duplicates: drop` in the mapping)"
            )
        else:
            notes.append(
                f"transactions ({file}): kept {_count(len(positions), 'row')} identical to an "
                f"earlier row (amount {worth}): without an order_id they may be real repeat "
                "purchases; `duplicates: drop` in the mapping drops them"
            )
    return Duplicates(drop, int(drop.sum()), tuple(notes))


def _repeated_orders(amounts: np.ndarray, order_ids: pa.ChunkedArray) -> np.ndarray:
    """Orders (amount >= 0) whose order id an earlier order has.

    The ids are dictionary-coded once by Arrow (about 0.3 s for 2M ids); counting the codes
    settles the usual case, every id once, in one pass.
    """
    repeated = np.zeros(len(amounts), dtype=bool)
    if order_ids.null_count == len(order_ids):
        return repeated
    if pa.types.is_dictionary(order_ids.type):
        order_ids = order_ids.cast(order_ids.type.value_type)
    coded = pc.dictionary_encode(order_ids)  # the chunks share one growing dictionary
    codes = np.concatenate(
        [chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False) for chunk in coded.chunks]
    )
    del coded
    orders = np.flatnonzero((amounts >= 0) & (codes >= 0))
    counts = np.bincount(codes[orders])
    if not len(counts) or counts.max() < 2:
        return repeated
    shared = orders[counts[codes[orders]] > 1]
    _, first = np.unique(codes[shared], return_index=True)
    later = np.ones(len(shared), dtype=bool)
    later[first] = False
    repeated[shared[later]] = True
    return repeated


def _identical_rows(
    stamps: np.ndarray, amounts: np.ndarray, rows: Callable[[np.ndarray], pd.DataFrame]
) -> np.ndarray:
    """Like ``frame.duplicated()``, but fast on millions of rows.

    Hashing every column of 20M rows is slow, so only rows whose (timestamp, amount) pair occurs
    more than once -- found by sorting one packed integer per row -- are compared in full.
    """
    keys = stamps.view(np.uint64)
    keys = keys if keys.flags.writeable else keys.copy()
    np.multiply(keys, np.uint64(0x9E3779B97F4A7C15), out=keys)
    np.bitwise_xor(keys, (amounts + 0.0).view(np.uint64), out=keys)  # + 0.0: -0.0 is 0.0
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    identical = np.zeros(len(keys), dtype=bool)
    if len(repeated):
        candidates = np.flatnonzero(pd.Series(keys, copy=False).isin(repeated).to_numpy())
        identical[candidates] = rows(candidates).duplicated().to_numpy()
    return identical


def _total(amounts: np.ndarray, positions: np.ndarray) -> str:
    return f"{float(amounts[positions].sum()):,.2f}"


def add_derived_customers(
    customers: pa.Table | None,
    transactions: pa.Table,
    files: dict[str, str],
    warnings: list[str],
) -> tuple[pa.Table, int]:
    """Append the customers who bought but are not in ``customers`` (all of them when it is
    absent), last, sorted by id, with a warning naming a few.

    Their ``signup_date`` is the day of their first purchase: known from that day on, so a
    feature at an earlier cutoff cannot see them, and tenure still means something. Their
    other columns, and any extra columns of ``customers``, are missing.

    Returns
    -------
    customers : pyarrow.Table
        With ``customer_id`` as plain text.
    derived : int
        Customers added.
    """
    ids = one_dictionary(transactions.column(KEY))
    codes = pa.chunked_array([chunk.indices for chunk in ids.chunks], pa.int32())
    values = ids.chunk(0).dictionary if ids.num_chunks else pa.array([], pa.string())
    first = pa.table({"code": codes, "timestamp": transactions.column("timestamp")})
    if customers is not None:
        known = decoded(customers, [KEY]).column(KEY).combine_chunks()
        unknown = pc.invert(pc.is_in(values, value_set=known))
        first = first.filter(pc.take(unknown, codes))
    first = (
        first.group_by("code")
        .aggregate([("timestamp", "min")])
        .sort_by("code")  # codes follow the sorted ids
    )
    derived_ids = values.take(first.column("code"))
    signup = pc.floor_temporal(first.column("timestamp_min"), unit="day")
    derived = canonical_arrow(pa.table({KEY: derived_ids, "signup_date": signup}), "customers")
    if customers is None:
        return derived, len(derived)
    customers = decoded(customers, [KEY])
    if len(derived):
        shown = derived.column(KEY).slice(0, MAX_SAMPLES).to_pylist()
        examples = ", ".join(repr(value) for value in shown)
        warnings.append(
            f"customers ({files['customers']}): {_count(len(derived), 'customer')} found only "
            f"in transactions; added with signup_date = day of first purchase (e.g. {examples})"
        )
        customers = pa.concat_tables([customers, derived], promote_options="default")
    return customers, len(derived)


def known_events(
    name: str,
    events: pa.Table | None,
    customers: pa.Table,
    files: dict[str, str],
    warnings: list[str],
) -> pa.Table:
    """Keep the rows of event table ``name`` (``interactions``, ``campaigns``, ``costs``) that
    belong to known customers.

    People who never bought and are not customers (visitors, prospects, mistyped ids) are
    dropped, with a warning counting them and naming a few (for ``costs``, with the amount
    dropped), so that every table refers to ``customers``. Without the table: its empty
    canonical form.
    """
    if events is None:
        return canonical_arrow(pa.table({}), name)
    ids = one_dictionary(events.column(KEY))
    codes = pa.chunked_array([chunk.indices for chunk in ids.chunks], pa.int32())
    values = ids.chunk(0).dictionary
    known_ids = decoded(customers, [KEY]).column(KEY).combine_chunks()
    known_values = pc.is_in(values, value_set=known_ids)
    if pc.all(known_values).as_py():
        return events
    known = pc.take(known_values, codes)
    unknown_codes = pc.filter(codes, pc.invert(known)).to_numpy()
    strangers = pd.unique(unknown_codes)
    shown = values.take(pa.array(strangers[:MAX_SAMPLES])).to_pylist()
    examples = ", ".join(repr(value) for value in shown)
    worth = ""
    if name == "costs":
        dropped = pc.sum(pc.filter(events.column("amount"), pc.invert(known))).as_py()
        worth = f" (amount {dropped:,.2f})"
    warnings.append(
        f"{name} ({files[name]}): dropped {_count(len(unknown_codes), 'row')}{worth} "
        f"of {_count(len(strangers), 'customer id')} found in neither customers nor "
        f"transactions (e.g. {examples})"
    )
    return present_values(_filter(events, known), name)


def _rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)`` for a few ascending rows, batch by batch (a take over a chunked
    column would first join its chunks: every order id copied for a few hundred rows)."""
    batches = table.to_batches()
    starts = np.cumsum([0, *(batch.num_rows for batch in batches)])
    taken = []
    for number, batch in enumerate(batches):
        inside = rows[(rows >= starts[number]) & (rows < starts[number + 1])]
        if len(inside):
            taken.append(batch.take(pa.array(inside - starts[number])))
    return pa.Table.from_batches(taken, schema=table.schema)


def _filter(table: pa.Table, keep: np.ndarray | pa.ChunkedArray) -> pa.Table:
    """``table.filter(keep)``, chunk by chunk, each original chunk released once filtered."""
    keep = pa.chunked_array([keep]) if isinstance(keep, np.ndarray) else keep
    batches = table.to_batches()
    schema = table.schema
    del table
    kept, start = [], 0
    while batches:
        batch = batches.pop(0)
        kept.append(batch.filter(keep.slice(start, batch.num_rows).combine_chunks()))
        start += batch.num_rows
        del batch
    return pa.Table.from_batches(kept, schema=schema)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' if number != 1 else ''}"
