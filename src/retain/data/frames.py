"""A data folder's checked tables as pandas frames: :class:`Dataset` and :func:`load_dataset`.

Loading is reading (:func:`~retain.data.reader.read_tables`: every table read a chunk at a
time, checked, every problem of every table raised at once, then tidied), decoded to pandas:
the columns the contract knows with their dtypes (:data:`~retain.data.schemas.KIND_DTYPES`),
then the extra columns with the dtypes a pandas read of the file gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from retain.data.dictionaries import plain_tables
from retain.data.mapping import Mapping
from retain.data.reader import read_tables
from retain.data.schemas import TABLES, empty_table
from retain.workspace import TimestampWindow

__all__ = ["Dataset", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """The canonical tables of a data folder, checked against the data contract.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id`` (str, unique), ``signup_date`` (datetime64[us], NaT allowed),
        ``acquisition_channel`` (str), ``acquisition_cost`` (float64), ``region`` (str), then any
        ``referred_by`` (str, a known customer who joined no later), then any extra columns.
        Customers found only in transactions are appended last (``derived_customers`` of
        them), with ``signup_date`` = day of their first purchase.
    transactions : pandas.DataFrame
        ``customer_id`` (str), ``timestamp`` (datetime64[us], UTC-naive), ``amount`` (float64,
        negative for returns), ``order_id`` (str), ``quantity`` (float64), ``category`` (str),
        ``channel`` (str), ``margin`` (float64), then extras. Repeated rows dropped as the
        mapping's ``duplicates`` policy says (see :func:`retain.data.cleanup.find_duplicates`).
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
    campaigns : pandas.DataFrame, default=no rows
        ``customer_id``, ``timestamp``, ``campaign_id`` (str), ``action`` (str; may be missing
        in control rows), ``group`` (``treatment`` or ``control``), ``cost`` (float64, not
        negative), then extras; no customer in both groups of one campaign. Only rows of known
        customers.
    costs : pandas.DataFrame, default=no rows
        ``customer_id``, ``timestamp``, ``kind`` (str, open vocabulary), ``amount`` (float64,
        not negative), then extras. Only rows of known customers.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    files: dict[str, str]
    warnings: tuple[str, ...]
    duplicates_dropped: int
    derived_customers: int
    fingerprint: str
    campaigns: pd.DataFrame = field(default_factory=lambda: empty_table("campaigns"))
    costs: pd.DataFrame = field(default_factory=lambda: empty_table("costs"))


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
        Folder holding ``transactions`` and optionally ``customers``, ``interactions``,
        ``campaigns`` and ``costs``, each as ``NAME.csv``, ``NAME.parquet`` or a folder
        ``NAME/`` of Parquet parts.
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
    read = read_tables(data_dir, mapping, window=window, extras=True)
    plain = plain_tables({**read.tables, **read.logs})
    frames = {name: _frame(plain[name], read.extras[name]) for name in TABLES}
    if read.files["customers"] and read.derived_customers:
        # customers read, then those derived: they lack the extra columns, which pandas
        # fills with missing values (the read ones' dtype allowing, as a concatenation does)
        customers = plain["customers"]
        derived = customers.slice(customers.num_rows - read.derived_customers)
        frames["customers"] = pd.concat([frames["customers"], _pandas(derived)], ignore_index=True)
    return Dataset(
        customers=frames["customers"],
        transactions=frames["transactions"],
        interactions=frames["interactions"],
        files=read.files,
        warnings=read.warnings,
        duplicates_dropped=read.duplicates_dropped,
        derived_customers=read.derived_customers,
        fingerprint=read.fingerprint,
        campaigns=frames["campaigns"],
        costs=frames["costs"],
    )


def _frame(table: pa.Table, extras: pa.Table) -> pd.DataFrame:
    """The canonical columns of ``table`` (as many rows as ``extras`` has), then ``extras``."""
    frame = _pandas(table.slice(0, extras.num_rows))
    if not extras.num_columns:
        return frame
    # as a whole-file read converts them (retain.data.files)
    stored = extras.to_pandas(ignore_metadata=True, date_as_object=False, split_blocks=True)
    return pd.concat([frame, stored], axis=1)


def _pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(split_blocks=True)
