"""Source data for a build: canonical tables plus the fingerprint that names them.

A build accepts a data folder, a loaded ``Dataset``, or a mapping of canonical frames (tests,
notebooks). Whatever the form, the result is a :class:`SourceData` whose fingerprint changes
exactly when the data do, so that a snapshot is rebuilt when its sources change and skipped when
they do not. A folder's fingerprint is that of its files' bytes (as ``Dataset.fingerprint``), so
it is known before its tables are read; they are read, checked and tidied
(:func:`retain.data.read_tables`, the reading of :func:`retain.data.load_dataset`) when first
needed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.engines.sources import (
    COST_EVENTS,
    DEFAULT_MARGIN_RATE,
    INPUTS,
    LOGS,
    SOURCES,
    cost_event_table,
    to_arrow,
)
from retain.errors import RetainError

if TYPE_CHECKING:
    from retain.data.reader import SourceTables

__all__ = [
    "STALE_AFTER_DAYS",
    "CutoffError",
    "CutoffWarning",
    "SourceData",
    "check_cutoffs",
    "default_cutoff",
    "resolve_data",
]

#: A cutoff this many days or more after the last event is allowed but warned about.
STALE_AFTER_DAYS = 31
EVENT_SOURCES = tuple(name for name in INPUTS if not SOURCES[name].is_static)


class CutoffError(RetainError):
    """A cutoff at which no features can be built (before the first event)."""


class CutoffWarning(UserWarning):
    """A cutoff far after the last event: recency features will all be large."""


class SourceData:
    """Canonical source tables and the fingerprint that names them.

    Tables given in memory are held as given. A data folder's tables are read, checked and
    tidied (:func:`retain.data.read_tables`) only when first needed: its fingerprint comes from the
    bytes of its files, so a run on data already built into a store can find its snapshots,
    and what the store recorded about the data (:meth:`recall`), without loading them.

    Parameters
    ----------
    tables : dict of str to pyarrow.Table, optional
        ``customers``, ``transactions``, ``interactions`` in the canonical schema.
    fingerprint : str
        Identifies the content (from ``Dataset.fingerprint`` or a hash of the tables).
    origin : str, default=""
        Where the data came from, for messages.
    notes : tuple of str, default=()
        What loading tidied up (``Dataset.warnings``), for the user to read.
    compact : dict of str to pyarrow.Table, optional
        The tables in compact form (see :mod:`retain.data.dictionaries`) instead of ``tables``.
    load : callable, optional
        Returns the folder's :class:`~retain.data.SourceTables`; called when the tables are
        first needed (neither ``tables`` nor ``compact`` given).
    logs : dict of str to pyarrow.Table, optional
        The logs (``campaigns``, ``costs``; canonical columns) beside tables given in memory;
        a folder's come with its tables.

    Notes
    -----
    :attr:`tables` and :attr:`compact` hold the derived cost events too (``cost_events``, see
    :func:`retain.engines.sources.cost_event_table`): the ``costs`` log and the costs charged
    with :meth:`charge` (the workspace's ``costs:``), which are then part of the fingerprint.
    So is :attr:`margin_rate` (the workspace's ``margin_rate``), the margin of a transaction
    without one in the virtual ``profit_events`` source, when it is not the default.
    """

    def __init__(
        self,
        tables: Mapping[str, pa.Table] | None = None,
        fingerprint: str = "",
        origin: str = "",
        notes: Sequence[str] = (),
        *,
        compact: Mapping[str, pa.Table] | None = None,
        load: Callable[[], SourceTables] | None = None,
        logs: Mapping[str, pa.Table] | None = None,
    ):
        if tables is None and compact is None and load is None:
            raise ValueError("SourceData needs tables, compact tables or a way to load them")
        self.fingerprint = fingerprint
        self.origin = origin
        self._plain = dict(tables) if tables is not None else None
        self._compact = dict(compact) if compact is not None else None
        self._load = load
        self._logs = dict(logs) if logs is not None else None
        self._notes: tuple[str, ...] | None = None if load is not None else tuple(notes)
        self._event_range: tuple[datetime, datetime] | None | str = _UNKNOWN
        self._referrals: bool | None = None
        self._data_fingerprint = fingerprint
        self.cost_rates: dict[str, float] = {}
        #: Margin as a share of the amount of a transaction without a ``margin``, in the
        #: ``profit_events`` source (set by :meth:`charge`).
        self.margin_rate: float = DEFAULT_MARGIN_RATE
        self._cost_events: pa.Table | None = None

    def charge(
        self, rates: Mapping[str, float] | None, margin_rate: float | None = None
    ) -> SourceData:
        """Charge the configured costs (:meth:`retain.workspace.CostSettings.rates`) in the
        cost events, and take the workspace's ``margin_rate`` (``None``: keep the current);
        the fingerprint then names them too (unchanged without a cost and with the default
        margin rate), so that snapshots and staged sources are made again when they change.
        Returns ``self``."""
        charged = {str(kind): float(rate) for kind, rate in (rates or {}).items() if rate}
        rate = self.margin_rate if margin_rate is None else float(margin_rate)
        if charged != self.cost_rates:
            self.cost_rates, self._cost_events = charged, None
        self.margin_rate = rate
        fingerprint = self._data_fingerprint
        if charged:
            text = json.dumps(sorted(charged.items()))
            fingerprint = hashlib.sha256(f"{fingerprint}|costs|{text}".encode()).hexdigest()[:16]
        if rate != DEFAULT_MARGIN_RATE:  # the default names no rate: fingerprints as before
            digest = hashlib.sha256(f"{fingerprint}|margin_rate|{rate!r}".encode()).hexdigest()
            fingerprint = digest[:16]
        self.fingerprint = fingerprint
        return self

    @classmethod
    def from_folder(
        cls, data_dir: str | Path, mapping: object = None, window: object = None
    ) -> SourceData:
        """The sources of a data folder, fingerprinted from its files; read when needed.

        ``window`` (a :class:`retain.workspace.TimestampWindow`) bounds plausible dates.

        Raises
        ------
        ConfigError
            When the mapping is invalid.
        DataError
            When a table cannot be located (every problem of the folder, as ``load_dataset``).
        """
        from retain.data import folder_fingerprint, read_tables
        from retain.data.mapping import resolve_mapping
        from retain.errors import DataError

        mapping = resolve_mapping(mapping)
        try:
            known = folder_fingerprint(data_dir, mapping)
        except DataError:
            loaded = read_tables(data_dir, mapping, window=window)  # raises every problem
            return cls._of(loaded)
        origin = ", ".join(path for path in known.files.values() if path)
        load = functools.partial(read_tables, data_dir, mapping, known=known, window=window)
        return cls(fingerprint=known.fingerprint, origin=origin, load=load)

    @classmethod
    def _of(cls, loaded: SourceTables) -> SourceData:
        origin = ", ".join(path for path in loaded.files.values() if path)
        return cls(
            fingerprint=loaded.fingerprint,
            origin=origin,
            notes=loaded.warnings,
            compact=loaded.tables,
            logs=_plain_logs(loaded.logs),
        )

    @property
    def loaded(self) -> bool:
        """Whether the tables are in memory."""
        return self._plain is not None or self._compact is not None

    @property
    def tables(self) -> dict[str, pa.Table]:
        """The canonical tables (plain text columns), loaded if needed."""
        if self._plain is None:
            from retain.data.dictionaries import plain_tables

            self._ensure_loaded()
            self._plain = plain_tables(self._compact)
            self._compact = None  # one form in memory; the compact one is derived again
        return {**self._plain, COST_EVENTS: self._costs_table()}

    @property
    def compact(self) -> dict[str, pa.Table]:
        """The tables in compact form (see :mod:`retain.data.dictionaries`), loaded if needed."""
        self._ensure_loaded()
        if self._compact is None:
            from retain.data.dictionaries import compact_tables

            compact = compact_tables(self._plain)
        else:
            compact = dict(self._compact)
        return {**compact, COST_EVENTS: _coded_like(self._costs_table(), compact)}

    def _costs_table(self) -> pa.Table:
        """The cost events, derived once from the plain tables, the log and the rates."""
        if self._cost_events is None:
            from retain.engines.base import charged_costs

            rates = charged_costs(self, self.cost_rates)  # None: nothing costs
            if rates is None:
                self._cost_events = to_arrow(COST_EVENTS, None)
            else:
                plain = self._plain if self._plain is not None else self._plain_inputs()
                self._cost_events = cost_event_table(
                    plain["transactions"], plain["interactions"], self.logs["costs"], rates
                )
        return self._cost_events

    def _plain_inputs(self) -> dict[str, pa.Table]:
        from retain.data.dictionaries import plain_tables

        wanted = ("transactions", "interactions")
        return plain_tables({name: self._compact[name] for name in wanted})  # type: ignore[index]

    @property
    def logs(self) -> dict[str, pa.Table]:
        """The logs rules read (``campaigns``, ``costs``), canonical columns and plain text; no
        rows when the data have none. Reads a folder's tables if needed."""
        if self._logs is None:
            if self._load is not None:
                self._ensure_loaded()
            if self._logs is None:
                self._logs = {}
        return {name: self._logs.get(name, to_arrow(name, None)) for name in LOGS}

    @property
    def notes(self) -> tuple[str, ...]:
        """What loading tidied up (the store's record of it when not loaded)."""
        if self._notes is None:
            self._ensure_loaded()
        return self._notes or ()

    @property
    def event_range(self) -> tuple[datetime, datetime] | None:
        """First and last event timestamp over the event tables (``None`` without events)."""
        if self._event_range == _UNKNOWN:
            self._event_range = _event_range(self._read())
        return self._event_range  # type: ignore[return-value]

    @property
    def has_referrals(self) -> bool:
        """Whether a customer names who referred them (``customers.referred_by``); known from
        the store's record without reading the tables."""
        if self._referrals is None:
            customers = self._read().get("customers")
            self._referrals = customers is not None and "referred_by" in customers.column_names
            if self._referrals:
                column = customers.column("referred_by")
                self._referrals = column.null_count < len(column)
        return self._referrals

    def _read(self) -> dict[str, pa.Table]:
        """The tables as read, in whichever form they are held (no derived source)."""
        self._ensure_loaded()
        return self._plain if self._plain is not None else self._compact  # type: ignore[return-value]

    def _ensure_loaded(self) -> None:
        """Read and check the folder's tables unless they are in memory."""
        if self.loaded:
            return
        loaded = self._load()
        if loaded.fingerprint != self._data_fingerprint:
            raise RetainError(
                f"the files of {self.origin or 'the data'} changed while being read; run again"
            )
        self._compact = mapped(dict(loaded.tables))
        self._logs = _plain_logs(loaded.logs)
        self._notes = tuple(loaded.warnings)
        self._logs = dict(loaded.logs)

    def release(self) -> None:
        """Drop the tables of a data folder from memory; they are read (and checked) again
        if needed. Tables given in memory are kept."""
        if self._load is not None:
            self._plain = self._compact = self._logs = self._cost_events = None

    def record(self) -> dict:
        """What a store keeps about these sources: fingerprint, origin, notes, event range,
        whether customers name referrers."""
        bounds = self.event_range
        return {
            "fingerprint": self.fingerprint,
            "origin": self.origin,
            "notes": list(self.notes),
            "event_range": None if bounds is None else [bound.isoformat() for bound in bounds],
            "referrals": self.has_referrals,
        }

    def recall(self, record: Mapping) -> None:
        """Take the notes, the event range and whether there are referrals from a
        :meth:`record` of the same sources."""
        if record.get("fingerprint") != self.fingerprint:
            raise ValueError("a record of other sources")
        bounds = record["event_range"]
        self._notes = tuple(record["notes"])
        self._referrals = record.get("referrals")
        self._event_range = None if bounds is None else tuple(map(datetime.fromisoformat, bounds))


_UNKNOWN = "unknown"


def _plain_logs(logs: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The logs rules read, decoded to plain text, canonical columns only."""
    from retain.data.dictionaries import plain_tables

    return {
        name: to_arrow(name, table)
        for name, table in plain_tables({name: logs[name] for name in LOGS if name in logs}).items()
    }


#: Loaded tables larger than this are kept in memory-mapped temporary Arrow files.
MAP_ABOVE_BYTES = 256 * 2**20


def mapped(tables: dict[str, pa.Table], above: int = MAP_ABOVE_BYTES) -> dict[str, pa.Table]:
    """The same tables, read back from temporary Arrow files mapped into memory when larger
    than ``above`` bytes in all (the files are deleted at once and vanish with the tables).

    A mapped page takes memory only once read: a build scans a few columns of each table (the
    snapshot of the default repository reads 0.7 GB of 1.7 GB for a million customers), and
    what it does not read (order ids, quantities, margins) stays on disk. The input ``tables``
    are emptied as they are written, so each is held once.
    """
    if sum(table.nbytes for table in tables.values()) <= above:
        return tables
    result = {}
    for name in list(tables):
        table = tables.pop(name)
        descriptor, path = tempfile.mkstemp(prefix=f"retain-{name}-", suffix=".arrow")
        os.close(descriptor)
        try:
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            result[name] = pa.ipc.open_file(pa.memory_map(path)).read_all()
        except (pa.ArrowException, OSError):
            result[name] = table  # e.g. no room on disk: kept in memory
        finally:
            del table
            with contextlib.suppress(OSError):
                os.unlink(path)  # the mapping outlives the name
    return result


def _coded_like(table: pa.Table, compact: Mapping[str, pa.Table]) -> pa.Table:
    """``table`` with its ids coded on the dictionary the compact tables share, if they do (so
    staging keeps their key codes; see :func:`retain.data.dictionaries.key_codes`)."""
    from retain.data.dictionaries import KEY, key_codes, shared_dictionary

    keys = shared_dictionary([t.column(KEY) for t in compact.values()])
    if keys is None or not table.num_rows:
        return table
    coded, _ = key_codes({COST_EVENTS: table}, keys)
    return coded[COST_EVENTS]


def _event_range(tables: Mapping[str, pa.Table]) -> tuple[datetime, datetime] | None:
    bounds = []
    for name in EVENT_SOURCES:
        column = tables[name].column(SOURCES[name].event_time)
        if len(column) and column.null_count < len(column):
            low_high = pc.min_max(column)
            bounds += [low_high["min"].as_py(), low_high["max"].as_py()]
    return (min(bounds), max(bounds)) if bounds else None


def resolve_data(data: object, mapping: object = None, window: object = None) -> SourceData:
    """Turn a data folder, a ``Dataset`` or a mapping of frames into :class:`SourceData`.

    Parameters
    ----------
    data : str, Path, retain.data.Dataset, SourceData or mapping of str to DataFrame
        The sources. A folder is fingerprinted from its files and read when its tables are
        first needed; a mapping is fingerprinted by hashing its canonical content.
    mapping : path, dict or None, default=None
        Column mapping, used only when ``data`` is a folder.
    window : retain.workspace.TimestampWindow, optional
        Plausible dates, checked when a folder is read (default: 1900-01-01 to today + 1 day).
    """
    if isinstance(data, SourceData):
        return data
    if isinstance(data, str | Path):
        return SourceData.from_folder(data, mapping, window)
    if all(hasattr(data, name) for name in (*INPUTS, "fingerprint")):
        tables = {name: to_arrow(name, getattr(data, name)) for name in INPUTS}
        logs = {name: to_arrow(name, getattr(data, name, None)) for name in LOGS}
        origin = ", ".join(path for path in getattr(data, "files", {}).values() if path)
        notes = tuple(getattr(data, "warnings", ()))
        return SourceData(tables, str(data.fingerprint), origin, notes, logs=logs)
    if isinstance(data, Mapping):
        tables = {name: to_arrow(name, data.get(name)) for name in INPUTS}
        logs = {name: to_arrow(name, data.get(name)) for name in LOGS}
        # a log with rows is part of the content; without, the fingerprint is as before logs
        hashed = {**tables, **{name: table for name, table in logs.items() if table.num_rows}}
        return SourceData(tables, _content_fingerprint(hashed), "in-memory tables", logs=logs)
    raise TypeError(f"expected a data folder, a Dataset or a mapping of tables, got {type(data)}")


def _content_fingerprint(tables: Mapping[str, pa.Table]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, tables[name].schema) as writer:
            writer.write_table(tables[name].combine_chunks())
        digest.update(name.encode() + b"\0" + sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]


def default_cutoff(data: SourceData) -> tuple[date, datetime]:
    """The cutoff a command takes without ``--as-of``: the day after the last event, so that
    every event counts. Returns it with the last event's timestamp, for the message saying so.

    Raises
    ------
    CutoffError
        When there are no events.
    """
    bounds = data.event_range
    if bounds is None:
        raise CutoffError(f"no transactions or interactions in {data.origin or 'the data'}")
    last = pd.Timestamp(bounds[1])
    return last.date() + timedelta(days=1), last.to_pydatetime()


def check_cutoffs(cutoffs: Sequence[date], data: SourceData) -> None:
    """Refuse cutoffs with no history before them; warn about ones long after the data end.

    Raises
    ------
    CutoffError
        When there are no events, or a cutoff is on or before the day of the first event.
    """
    bounds = data.event_range
    if bounds is None:
        raise CutoffError(f"no transactions or interactions in {data.origin or 'the data'}")
    first, last = (pd.Timestamp(bound) for bound in bounds)
    early = [day for day in cutoffs if day <= first.date()]
    if early:
        shown = ", ".join(str(day) for day in early)
        earliest = first.date() + timedelta(days=1)
        raise CutoffError(
            f"cutoff {shown} is on or before the first event ({first}); features at a cutoff use "
            f"events before it only, so the earliest useful cutoff is {earliest}"
        )
    for day in cutoffs:
        gap = (day - last.date()).days
        if gap >= STALE_AFTER_DAYS:
            warnings.warn(
                f"cutoff {day} is {gap} days after the last event ({last}); recency features "
                "will all be large (is the data extract up to date?)",
                CutoffWarning,
                stacklevel=3,
            )
