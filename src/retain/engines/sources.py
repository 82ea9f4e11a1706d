"""Source tables as the engines see them: the canonical tables, their columns and Arrow types.

Every engine reads the three canonical tables of the data contract; feature definitions are
checked against :data:`SOURCES` when the repository loads. Frames of any shape become the
canonical Arrow tables with :func:`to_arrow`; an engine then stages or registers them (see
:meth:`retain.engines.Engine.connect`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from retain.data.schemas import TABLES

__all__ = ["LOGS", "SOURCES", "SourceSchema", "arrow_schema", "to_arrow"]

ARROW_TYPES = {
    "id": pa.string(),
    "text": pa.string(),
    "time": pa.timestamp("us"),
    "number": pa.float64(),
}


@dataclass(frozen=True)
class SourceSchema:
    """What a feature view may read from one source table.

    Parameters
    ----------
    name : str
        Canonical table name.
    columns : dict of str to str
        Column name to kind (``id``, ``time``, ``number``, ``text``).
    event_time : str or None
        Timestamp column of an event table; ``None`` for the static ``customers`` table.
    known_since : str or None
        For a static table, the column saying since when an entity is known (``signup_date``).
    """

    name: str
    columns: dict[str, str]
    event_time: str | None = None
    known_since: str | None = None

    @property
    def is_static(self) -> bool:
        """True for a table of attributes rather than events."""
        return self.event_time is None


def _schema(name: str, event_time: str | None, known_since: str | None = None) -> SourceSchema:
    columns = {column.name: column.kind for column in TABLES[name].columns}
    return SourceSchema(name, columns, event_time=event_time, known_since=known_since)


SOURCES: dict[str, SourceSchema] = {
    "customers": _schema("customers", None, known_since="signup_date"),
    "transactions": _schema("transactions", "timestamp"),
    "interactions": _schema("interactions", "timestamp"),
}


#: Logs that rules read beside the sources (no feature view reads them).
LOGS: dict[str, SourceSchema] = {
    "campaigns": _schema("campaigns", "timestamp"),
    "costs": _schema("costs", "timestamp"),
}


def arrow_schema(source: str) -> pa.Schema:
    """The Arrow schema of a canonical table (canonical columns only, canonical order)."""
    columns = (SOURCES.get(source) or LOGS[source]).columns
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in columns.items()])


def to_arrow(source: str, frame: pd.DataFrame | pa.Table | None) -> pa.Table:
    """Canonical Arrow table of ``source``: absent optional columns (or tables) become nulls."""
    schema = arrow_schema(source)
    if frame is None:
        return schema.empty_table()
    if isinstance(frame, pd.DataFrame):
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    rows = frame.num_rows
    arrays = []
    for field in schema:
        if field.name in frame.column_names:
            arrays.append(frame.column(field.name).cast(field.type))
        else:
            arrays.append(pa.nulls(rows, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
