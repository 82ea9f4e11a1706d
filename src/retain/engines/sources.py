"""Source tables as the engines see them: the canonical tables, their columns and Arrow types.

Every engine reads the three canonical tables of the data contract and one table derived from
them, the cost events (:data:`COST_EVENTS`: the ``costs`` log and the costs ``retain.yaml``
configures, one row per cost, as :func:`retain.engines.rules.cost_events` defines them). Views
may also read a virtual source (:data:`VIRTUAL_SOURCES`: the profit events), an expression
over those tables that is never staged; feature definitions are checked against
:data:`FEATURE_SOURCES` when the repository loads. Frames of
any shape become the canonical Arrow tables with :func:`to_arrow`; an engine then stages or
registers them (see :meth:`retain.engines.Engine.connect`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ibis
import pandas as pd
import pyarrow as pa

from retain.data.schemas import TABLES

__all__ = ["COST_EVENTS", "DEFAULT_MARGIN_RATE", "FEATURE_SOURCES", "INPUTS", "LOGS",
           "PROFIT_EVENTS", "SOURCES", "VIRTUAL_SOURCES", "SourceSchema", "arrow_schema",
           "cost_event_table", "to_arrow"]  # fmt: skip

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


#: The derived source of cost events: ``customer_id``, ``timestamp`` (the day of the cost, at
#: midnight), ``kind`` and ``amount`` (the cost, exact to a millionth).
COST_EVENTS = "cost_events"

SOURCES: dict[str, SourceSchema] = {
    "customers": _schema("customers", None, known_since="signup_date"),
    "transactions": _schema("transactions", "timestamp"),
    "interactions": _schema("interactions", "timestamp"),
    COST_EVENTS: SourceSchema(
        COST_EVENTS,
        {"customer_id": "id", "timestamp": "time", "kind": "text", "amount": "number"},
        event_time="timestamp",
    ),
}
#: The sources read from the data; the others are derived from them (and the logs).
INPUTS = ("customers", "transactions", "interactions")

#: The virtual source of profit events: each transaction's margin (``+``), each cost event
#: (``-``) and the acquisition cost (``-``, on the customer's first day: the earlier of signup
#: and first transaction), with ``kind`` ``margin``, ``cost`` or ``acquisition`` and the signed
#: ``amount``, exact to a millionth. Their sum before a cutoff is the profit to date of
#: :func:`retain.engines.rules.profit_and_loss`.
PROFIT_EVENTS = "profit_events"
#: Margin as a share of the amount of a transaction without a ``margin`` (``retain.yaml``
#: ``margin_rate``).
DEFAULT_MARGIN_RATE = 0.3

#: Sources that are Ibis expressions over the staged ones (:data:`SOURCES`), built by the
#: feature compiler only when a view reads them: nothing is staged or held for them.
VIRTUAL_SOURCES: dict[str, SourceSchema] = {
    PROFIT_EVENTS: SourceSchema(
        PROFIT_EVENTS,
        {"customer_id": "id", "timestamp": "time", "kind": "text", "amount": "number"},
        event_time="timestamp",
    ),
}
#: Every source a feature view may read.
FEATURE_SOURCES: dict[str, SourceSchema] = {**SOURCES, **VIRTUAL_SOURCES}


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


def cost_event_table(
    transactions: pa.Table,
    interactions: pa.Table,
    costs: pa.Table,
    rates: Mapping[str, float],
) -> pa.Table:
    """The :data:`COST_EVENTS` source: :func:`retain.engines.rules.cost_events` (the one
    definition of what costs) of the canonical tables, the ``costs`` log and the configured
    ``rates``, sorted by customer, day, kind and amount.

    Built once per fingerprint of the sources (which covers ``rates``) on an in-memory DuckDB,
    then staged by every engine like the tables it derives from. Without a logged cost and a
    configured rate it has no rows, and nothing runs.
    """
    if not costs.num_rows and not any(rates.values()):
        return arrow_schema(COST_EVENTS).empty_table()
    import pyarrow.compute as pc

    from retain.engines import rules
    from retain.engines.layout import KEY, MICRO
    from retain.engines.staging import connect

    backend = connect()
    try:
        tables = {}
        for name, table in (("t", transactions), ("i", interactions), ("c", costs)):
            backend.con.register(f"_retain_cost_{name}", table)
            tables[name] = ibis.table(
                ibis.Schema.from_pyarrow(table.schema), name=f"_retain_cost_{name}"
            )
        events = rules.cost_events(tables["t"], tables["i"], tables["c"], rates)
        events = events.order_by([KEY, rules.DAY, "kind", "cost"])
        backend._run_pre_execute_hooks(events)  # as the DuckDB engine runs a rule
        found = backend.con.sql(backend.compile(events)).to_arrow_table()
    finally:
        backend.disconnect()
    days = found.column(rules.DAY).cast(pa.int64())
    stamps = pc.multiply(days, 86_400_000_000).cast(pa.timestamp("us"))
    amounts = pc.divide(found.column("cost").cast(pa.float64()), float(MICRO))
    return pa.Table.from_arrays(
        [found.column(KEY).cast(pa.string()), stamps, found.column("kind"), amounts],
        schema=arrow_schema(COST_EVENTS),
    )
