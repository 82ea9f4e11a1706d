"""Canonical tables of the data contract: their columns, kinds and pandera schemas.

Every input is converted to these tables whatever its source names and formats. A column's
*kind* says how raw values are parsed and which dtype it ends up with:

========  ==================  =================  ===============================================
kind      dtype               Arrow type         parsing
========  ==================  =================  ===============================================
id        ``str``             ``string``         read as text, never as a number (``00123``)
time      ``datetime64[us]``  ``timestamp[us]``  ISO 8601 or a given format; UTC, naive
number    ``float64``         ``double``         must be numeric and finite
text      ``str``             ``string``         as read; empty cells become missing
========  ==================  =================  ===============================================

``customers``, ``transactions`` and ``interactions`` are what features are built from
(:data:`FEATURE_SOURCE_TABLES`); ``campaigns`` and ``costs`` are logs that are read, checked and
summarised like them (:data:`LOG_TABLES`). Only ``transactions`` must exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa

__all__ = [
    "ARROW_TYPES",
    "CAMPAIGNS",
    "COSTS",
    "CUSTOMERS",
    "FEATURE_SOURCE_TABLES",
    "INTERACTIONS",
    "KIND_DTYPES",
    "LOG_TABLES",
    "TABLES",
    "TRANSACTIONS",
    "ColumnSpec",
    "TableSpec",
    "canonical_arrow",
    "canonical_schema",
    "empty_column",
    "empty_table",
]

Kind = Literal["id", "time", "number", "text"]

KIND_DTYPES: dict[str, str] = {
    "id": "str",
    "time": "datetime64[us]",
    "number": "float64",
    "text": "str",
}
#: Arrow type of each kind, in the tables the reader gives (and the feature engine reads).
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "time": pa.timestamp("us"),
    "number": pa.float64(),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : {"id", "time", "number", "text"}
        How raw values are parsed and which dtype results (see :data:`KIND_DTYPES`).
    required : bool, default=False
        Whether the column must be present in the input.
    nullable : bool, default=True
        Whether missing values are allowed (``False`` for the required columns).
    description : str, default=""
        One line for the documentation.
    values : tuple of str, default=()
        The values a text column may hold (``()``: any, an open vocabulary).
    minimum : float or None, default=None
        The lowest value a number column may hold (``None``: any).
    """

    name: str
    kind: Kind
    required: bool = False
    nullable: bool = True
    description: str = ""
    values: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def dtype(self) -> str:
        """The pandas dtype of the column after loading."""
        return KIND_DTYPES[self.kind]


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its name, whether it must exist, and its columns."""

    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical column names, in canonical order."""
        return tuple(column.name for column in self.columns)

    @property
    def required_names(self) -> tuple[str, ...]:
        """Names of the columns the input must have."""
        return tuple(column.name for column in self.columns if column.required)

    def column(self, name: str) -> ColumnSpec:
        """The spec of canonical column ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _required(name: str, kind: Kind, description: str, **rules) -> ColumnSpec:
    return ColumnSpec(name, kind, required=True, nullable=False, description=description, **rules)


def _optional(name: str, kind: Kind, description: str, **rules) -> ColumnSpec:
    return ColumnSpec(name, kind, required=False, nullable=True, description=description, **rules)


CUSTOMERS = TableSpec(
    "customers",
    (
        _required("customer_id", "id", "unique customer key"),
        _optional("signup_date", "time", "when the customer signed up (NaT allowed)"),
        _optional("acquisition_channel", "text", "channel the customer came through"),
        _optional("acquisition_cost", "number", "cost of acquiring the customer"),
        _optional("region", "text", "region or market"),
        _optional("referred_by", "id", "customer_id of the customer who referred this one"),
    ),
)

TRANSACTIONS = TableSpec(
    "transactions",
    (
        _required("customer_id", "id", "customer key"),
        _required("timestamp", "time", "when the purchase happened"),
        _required("amount", "number", "revenue; negative for returns and refunds"),
        _optional("order_id", "id", "order key"),
        _optional("quantity", "number", "units bought"),
        _optional("category", "text", "product category"),
        _optional("channel", "text", "sales channel"),
        _optional("margin", "number", "gross margin amount"),
    ),
    required=True,
)

INTERACTIONS = TableSpec(
    "interactions",
    (
        _required("customer_id", "id", "customer key"),
        _required("timestamp", "time", "when the interaction happened"),
        _required("type", "text", "open vocabulary, e.g. support_ticket, web_visit, email_open"),
        _optional("value", "number", "e.g. a satisfaction score"),
        _optional("channel", "text", "contact channel"),
    ),
)

#: Retention campaigns as run: who was enrolled when, in which campaign, with which action,
#: treated or held out as control (the randomised experiments uplift is learned from).
CAMPAIGNS = TableSpec(
    "campaigns",
    (
        _required("customer_id", "id", "customer key"),
        _required("timestamp", "time", "when the customer was contacted (or held out)"),
        _required("campaign_id", "id", "campaign key"),
        # a control row may leave it empty: a control group shared by the campaign's actions
        ColumnSpec("action", "text", required=True, description="the action, e.g. discount"),
        _required("group", "text", "treatment or control", values=("treatment", "control")),
        _optional("cost", "number", "cost of the contact (0 or empty for control)", minimum=0.0),
    ),
)

#: Cost to serve as logged: one row per cost incurred for a customer.
COSTS = TableSpec(
    "costs",
    (
        _required("customer_id", "id", "customer key"),
        _required("timestamp", "time", "when the cost was incurred"),
        _required("kind", "text", "open vocabulary, e.g. order, return, support_ticket"),
        _required("amount", "number", "the cost; never negative", minimum=0.0),
    ),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (CUSTOMERS, TRANSACTIONS, INTERACTIONS, CAMPAIGNS, COSTS)
}
#: The tables features are built from.
FEATURE_SOURCE_TABLES = ("customers", "transactions", "interactions")
#: The logs that are read, checked and summarised, and used by no feature yet.
LOG_TABLES = ("campaigns", "costs")


def _finite(series: pd.Series) -> pd.Series:
    """True where a number is finite or missing (missing values are judged by ``nullable``)."""
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(~np.isinf(values), index=series.index, copy=False)


def _among(values: tuple[str, ...]) -> Callable[[pd.Series], pd.Series]:
    """True where a value is one of ``values`` (missing values are judged by ``nullable``)."""
    return lambda series: series.isin(list(values))


def _at_least(minimum: float) -> Callable[[pd.Series], pd.Series]:
    """True where a number is ``minimum`` or more."""
    return lambda series: series >= minimum


def canonical_schema(table: str) -> pandera.DataFrameSchema:
    """The pandera schema of a loaded canonical table.

    It checks dtypes, missing values in required columns, finite numbers, (for
    ``customers``) unique ids, and the values and minimums of :class:`ColumnSpec`. Extra
    columns are allowed.

    Parameters
    ----------
    table : str
        A name of :data:`TABLES`.

    Returns
    -------
    pandera.pandas.DataFrameSchema
    """
    spec = TABLES[table]
    columns = {}
    for column in spec.columns:
        checks = [pandera.Check(_finite, name="finite")] if column.kind == "number" else []
        if column.values:
            checks.append(pandera.Check(_among(column.values), name="values"))
        if column.minimum is not None:
            checks.append(pandera.Check(_at_least(column.minimum), name="minimum"))
        columns[column.name] = pandera.Column(
            column.dtype,
            checks=checks or None,
            nullable=column.nullable,
            unique=table == "customers" and column.name == "customer_id",
            required=True,
        )
    return pandera.DataFrameSchema(columns, strict=False, name=table)


def empty_column(kind: Kind, length: int, index: pd.Index | None = None) -> pd.Series:
    """An all-missing column of the dtype of ``kind`` (fills optional columns that are absent)."""
    index = pd.RangeIndex(length) if index is None else index
    if kind in ("id", "text"):  # an Arrow null array costs a bitmap, not millions of NaN objects
        values = pd.array(pa.nulls(length, pa.large_string()), dtype=KIND_DTYPES[kind])
    else:
        values = np.full(length, np.datetime64("NaT", "us") if kind == "time" else np.nan)
    return pd.Series(values, index=index, dtype=KIND_DTYPES[kind], copy=False)


def empty_table(table: str, length: int = 0) -> pd.DataFrame:
    """A canonical table of ``length`` rows in which every value is missing."""
    spec = TABLES[table]
    columns = {column.name: empty_column(column.kind, length) for column in spec.columns}
    return pd.DataFrame(columns, copy=False)


def canonical_arrow(table: pa.Table, name: str) -> pa.Table:
    """The canonical columns of ``table`` for canonical table ``name``, in canonical order and
    of their Arrow types (see :data:`ARROW_TYPES`); absent columns are all missing."""
    columns = []
    for column in TABLES[name].columns:
        kind = ARROW_TYPES[column.kind]
        present = column.name in table.column_names
        columns.append(
            table.column(column.name).cast(kind) if present else pa.nulls(len(table), kind)
        )
    return pa.Table.from_arrays(columns, names=list(TABLES[name].names))
