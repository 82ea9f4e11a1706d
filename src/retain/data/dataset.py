"""Load a data folder into a checked, canonical :class:`Dataset`.

Order of work: find and read every table, convert and check each one, raise one
:class:`~retain.errors.DataError` with every problem of every table, and only then tidy up what
is allowed but worth a warning (duplicate transactions, customers known only from transactions,
interactions of unknown customers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.loaders import TableSource, locate_table, read_table
from retain.data.mapping import Mapping, resolve_mapping
from retain.data.schemas import TABLES, empty_table
from retain.data.validation import conform_table
from retain.errors import MAX_SAMPLES, DataError, DataProblem
from retain.workspace import TimestampWindow

__all__ = [
    "Dataset",
    "Duplicates",
    "derived_warning",
    "FolderFingerprint",
    "find_duplicates",
    "file_stamps",
    "fingerprint",
    "folder_fingerprint",
    "load_dataset",
    "strangers_warning",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three canonical tables of a data folder, checked against the data contract.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id`` (str, unique), ``signup_date`` (datetime64[us], NaT allowed),
        ``acquisition_channel`` (str), ``acquisition_cost`` (float64), ``region`` (str), then any
        extra columns. Customers found only in transactions are appended last
        (``derived_customers`` of them), with ``signup_date`` = day of their first purchase.
    transactions : pandas.DataFrame
        ``customer_id`` (str), ``timestamp`` (datetime64[us], UTC-naive), ``amount`` (float64,
        negative for returns), ``order_id`` (str), ``quantity`` (float64), ``category`` (str),
        ``channel`` (str), ``margin`` (float64), then extras. Repeated rows dropped as the
        mapping's ``duplicates`` policy says (see :func:`find_duplicates`).
    interactions : pandas.DataFrame
        ``customer_id``, ``timestamp``, ``type`` (str), ``value`` (float64), ``channel`` (str),
        then extras; no rows when the table is absent. Only interactions of known customers.
    files : dict of str to str
        Table name -> file or folder read (``""`` when the table is absent).
    warnings : tuple of str
        What was tidied up, in plain words.
    duplicates_dropped : int
        Repeated transaction rows removed.
    derived_customers : int
        Customers added because they appear in transactions but not in ``customers``.
    fingerprint : str
        First 16 hex digits of a SHA-256 over the mapping text and the bytes of every file read,
        so that the same files give the same fingerprint wherever they are.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    files: dict[str, str]
    warnings: tuple[str, ...]
    duplicates_dropped: int
    derived_customers: int
    fingerprint: str


def load_dataset(
    data_dir: str | Path,
    mapping: str | Path | dict | Mapping | None = None,
    *,
    window: TimestampWindow | None = None,
) -> Dataset:
    """Read, convert and check the tables of a data folder.

    Parameters
    ----------
    data_dir : str or Path
        Folder holding ``transactions`` and optionally ``customers`` and ``interactions``, each
        as ``NAME.csv``, ``NAME.parquet`` or a folder ``NAME/`` of Parquet parts.
    mapping : str, Path, dict, Mapping or None, default=None
        A YAML mapping file (or its parsed content) for other column names, file names, formats
        and time zones; see :mod:`retain.data.mapping`.
    window : TimestampWindow, optional
        Plausible dates of events and signups (default: 1900-01-01 to today + 1 day).

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        When the mapping is invalid.
    DataError
        With every problem found in every table, when the data break the contract.
    """
    mapping = resolve_mapping(mapping)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise DataError(DataProblem("data", str(data_dir), None, f"data folder {what}"))
    sources, frames, problems = {}, {}, []
    for spec in TABLES.values():
        table_mapping = mapping.table(spec.name)
        try:
            source = locate_table(data_dir, spec.name, table_mapping)
            raw = read_table(source, table_mapping) if source is not None else None
        except DataError as error:
            problems.extend(error.problems)
            continue
        if source is None:
            continue
        sources[spec.name] = source
        frames[spec.name], found = conform_table(
            raw, spec, table_mapping, str(source.path), window=window
        )
        problems.extend(found)
        del raw
    if problems:
        raise DataError(problems)
    return _assemble(frames, sources, mapping)


def _assemble(frames: dict, sources: dict[str, TableSource], mapping: Mapping) -> Dataset:
    """Tidy the checked tables into a Dataset, noting each change as a warning."""
    files = {name: str(sources[name].path) if name in sources else "" for name in TABLES}
    warnings: list[str] = []
    policy = mapping.table("transactions").duplicates
    transactions, duplicates = _drop_duplicates(frames["transactions"], files, warnings, policy)
    customers, derived = _add_derived_customers(
        frames.get("customers"), transactions, files, warnings
    )
    interactions = _known_interactions(frames.get("interactions"), customers, files, warnings)
    return Dataset(
        customers=customers,
        transactions=transactions,
        interactions=interactions,
        files=files,
        warnings=tuple(warnings),
        duplicates_dropped=duplicates,
        derived_customers=derived,
        fingerprint=fingerprint(mapping, sources),
    )


def _drop_duplicates(
    transactions: pd.DataFrame, files: dict[str, str], warnings: list[str], policy: str
) -> tuple[pd.DataFrame, int]:
    """Apply the mapping's ``duplicates`` policy (see :func:`find_duplicates`)."""
    found = find_duplicates(
        transactions["timestamp"].to_numpy().view("int64").copy(),
        transactions["amount"].to_numpy(),
        _arrow(transactions["order_id"]),
        lambda rows: transactions.iloc[rows],
        policy,
        files["transactions"],
    )
    warnings.extend(found.warnings)
    if found.dropped:
        transactions = transactions[~found.drop].reset_index(drop=True)
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
    """Find repeated transactions and apply a ``duplicates`` policy: the one rule of both loaders.

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
            notes.append(duplicates_warning(file, len(positions), worth))
        else:
            notes.append(
                f"transactions ({file}): kept {_count(len(positions), 'row')} identical to an "
                f"earlier row (amount {worth}): without an order_id they may be real repeat "
                "purchases; `duplicates: drop` in the mapping drops them"
            )
    return Duplicates(drop, int(drop.sum()), tuple(notes))


def duplicates_warning(file: str, count: int, worth: str) -> str:
    """The warning about ``count`` exact duplicate transactions dropped."""
    return (
        f"transactions ({file}): dropped {_count(count, 'exact duplicate row')} (amount "
        f"{worth}; `duplicates: drop` in the mapping)"
    )


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


def _add_derived_customers(
    customers: pd.DataFrame | None,
    transactions: pd.DataFrame,
    files: dict[str, str],
    warnings: list[str],
) -> tuple[pd.DataFrame, int]:
    """Append customers who bought but are not in ``customers`` (all of them when it is absent).

    Their ``signup_date`` is the day of their first purchase: known from that day on, so a
    feature at an earlier cutoff cannot see it, and tenure still means something.
    """
    unknown = transactions[["customer_id", "timestamp"]]
    if customers is not None:
        unknown = unknown[~_isin(unknown["customer_id"], customers["customer_id"])]
    first_purchase = unknown.groupby("customer_id", sort=True)["timestamp"].min()
    derived = empty_table("customers", len(first_purchase))
    derived["customer_id"] = first_purchase.index.astype("str")
    derived["signup_date"] = first_purchase.dt.normalize().to_numpy()
    if customers is None:
        return derived, len(derived)
    if len(derived):
        shown = derived["customer_id"].head(MAX_SAMPLES).tolist()
        warnings.append(derived_warning(files, len(derived), shown))
        customers = pd.concat([customers, derived], ignore_index=True)
    return customers, len(derived)


def derived_warning(files: dict[str, str], count: int, shown: list[str]) -> str:
    """The warning about ``count`` customers derived from transactions (``shown``: the first)."""
    examples = ", ".join(repr(value) for value in shown[:MAX_SAMPLES])
    return (
        f"customers ({files['customers']}): {_count(count, 'customer')} found only in "
        f"transactions; added with signup_date = day of first purchase (e.g. {examples})"
    )


def _known_interactions(
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame,
    files: dict[str, str],
    warnings: list[str],
) -> pd.DataFrame:
    """Keep interactions of known customers; people who never bought and are not customers
    (visitors, prospects) are dropped so every table refers to ``customers``."""
    if interactions is None:
        return empty_table("interactions")
    known = _isin(interactions["customer_id"], customers["customer_id"])
    if known.all():
        return interactions
    strangers = interactions.loc[~known, "customer_id"].drop_duplicates()
    shown = strangers.head(MAX_SAMPLES).tolist()
    warnings.append(strangers_warning(files, int((~known).sum()), len(strangers), shown))
    return interactions[known].reset_index(drop=True)


def strangers_warning(files: dict[str, str], rows: int, people: int, shown: list[str]) -> str:
    """The warning about ``rows`` interactions of ``people`` unknown customers dropped."""
    examples = ", ".join(repr(value) for value in shown[:MAX_SAMPLES])
    return (
        f"interactions ({files['interactions']}): dropped {_count(rows, 'row')} of "
        f"{_count(people, 'customer id')} found in neither customers nor transactions "
        f"(e.g. {examples})"
    )


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` through Arrow, much faster than pandas on Arrow strings."""
    needles = _arrow(values)
    value_set = _arrow(allowed).combine_chunks().cast(needles.type)
    return pc.is_in(needles, value_set=value_set).to_numpy(zero_copy_only=False)


def _arrow(series: pd.Series) -> pa.ChunkedArray:
    to_arrow = getattr(series.array, "__arrow_array__", None)
    if to_arrow is not None:
        return to_arrow()
    return pa.chunked_array([pa.array(series, from_pandas=True)])


@dataclass(frozen=True)
class FolderFingerprint:
    """What identifies a data folder's content, known without reading a table.

    Attributes
    ----------
    fingerprint : str
        As ``Dataset.fingerprint``.
    files : dict of str to str
        Table name -> file or folder read (``""`` when absent), as ``Dataset.files``.
    stamps : dict of str to tuple of int
        Every file hashed -> (size, modification time in ns) before hashing: while they hold,
        the fingerprint does.
    """

    fingerprint: str
    files: dict[str, str]
    stamps: dict[str, tuple[int, int]]


def folder_fingerprint(
    data_dir: str | Path, mapping: str | Path | dict | Mapping | None = None
) -> FolderFingerprint:
    """The fingerprint :func:`load_dataset` would give a data folder, without reading a table.

    Raises
    ------
    ConfigError
        When the mapping is invalid.
    DataError
        When the folder or a table cannot be located (for the full list of problems, load it).
    """
    mapping = resolve_mapping(mapping)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(DataProblem("data", str(data_dir), None, "data folder not found"))
    sources = {}
    for spec in TABLES.values():
        source = locate_table(data_dir, spec.name, mapping.table(spec.name))
        if source is not None:
            sources[spec.name] = source
    files = {name: str(sources[name].path) if name in sources else "" for name in TABLES}
    stamps = file_stamps(sources)
    return FolderFingerprint(fingerprint(mapping, sources), files, stamps)


def file_stamps(sources: dict[str, TableSource]) -> dict[str, tuple[int, int]]:
    """Size and modification time (ns) of every file of ``sources``."""
    stamps = {}
    for source in sources.values():
        for part in source.parts:
            status = part.stat()
            stamps[str(part)] = (status.st_size, status.st_mtime_ns)
    return stamps


def fingerprint(mapping: Mapping, sources: dict[str, TableSource]) -> str:
    """SHA-256 over the mapping text and every file read, named relative to its table."""
    named = {}
    for table, source in sources.items():
        for part in source.parts:
            inner = part.relative_to(source.path) if source.kind == "parquet_dir" else part.name
            named[f"{table}/{Path(inner).as_posix()}"] = part
    digest = hashlib.sha256(mapping.text.encode("utf-8"))
    for name in sorted(named):
        with named[name].open("rb") as handle:
            content = hashlib.file_digest(handle, "sha256").digest()
        digest.update(f"\0{name}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' if number != 1 else ''}"
