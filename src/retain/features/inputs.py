"""Source data for a build: canonical tables plus the fingerprint that names them.

A build accepts a data folder (read with :func:`retain.data.load_dataset`), a loaded
``Dataset``, or a mapping of canonical frames (tests, notebooks). Whatever the form, the result
is a :class:`SourceData` whose fingerprint changes exactly when the data do, so that a snapshot
is rebuilt when its sources change and skipped when they do not.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.errors import RetainError
from retain.features.sources import SOURCES, to_arrow

__all__ = [
    "STALE_AFTER_DAYS",
    "CutoffError",
    "CutoffWarning",
    "SourceData",
    "check_cutoffs",
    "resolve_data",
]

#: A cutoff this many days or more after the last event is allowed but warned about.
STALE_AFTER_DAYS = 31
EVENT_SOURCES = tuple(name for name, schema in SOURCES.items() if not schema.is_static)


class CutoffError(RetainError):
    """A cutoff at which no features can be built (before the first event)."""


class CutoffWarning(UserWarning):
    """A cutoff far after the last event: recency features will all be large."""


@dataclass(frozen=True)
class SourceData:
    """Canonical source tables and their fingerprint.

    Parameters
    ----------
    tables : dict of str to pyarrow.Table
        ``customers``, ``transactions``, ``interactions`` in the canonical schema.
    fingerprint : str
        Identifies the content (from ``Dataset.fingerprint`` or a hash of the tables).
    origin : str, default=""
        Where the data came from, for messages.
    notes : tuple of str, default=()
        What loading tidied up (``Dataset.warnings``), for the user to read.
    """

    tables: dict[str, pa.Table]
    fingerprint: str
    origin: str = ""
    notes: tuple[str, ...] = ()

    @cached_property
    def event_range(self) -> tuple[datetime, datetime] | None:
        """First and last event timestamp over the event tables (``None`` without events)."""
        bounds = []
        for name in EVENT_SOURCES:
            column = self.tables[name].column(SOURCES[name].event_time)
            if len(column) and column.null_count < len(column):
                low_high = pc.min_max(column)
                bounds += [low_high["min"].as_py(), low_high["max"].as_py()]
        return (min(bounds), max(bounds)) if bounds else None


def resolve_data(data: object, mapping: object = None) -> SourceData:
    """Turn a data folder, a ``Dataset`` or a mapping of frames into :class:`SourceData`.

    Parameters
    ----------
    data : str, Path, retain.data.Dataset, SourceData or mapping of str to DataFrame
        The sources. A mapping is fingerprinted by hashing its canonical content.
    mapping : path, dict or None, default=None
        Column mapping, used only when ``data`` is a folder.
    """
    if isinstance(data, SourceData):
        return data
    if isinstance(data, str | Path):
        from retain.data import load_dataset

        data = load_dataset(data, mapping=mapping)
    if all(hasattr(data, name) for name in (*SOURCES, "fingerprint")):
        tables = {name: to_arrow(name, getattr(data, name)) for name in SOURCES}
        origin = ", ".join(path for path in getattr(data, "files", {}).values() if path)
        notes = tuple(getattr(data, "warnings", ()))
        return SourceData(tables, str(data.fingerprint), origin, notes)
    if isinstance(data, Mapping):
        tables = {name: to_arrow(name, data.get(name)) for name in SOURCES}
        return SourceData(tables, _content_fingerprint(tables), "in-memory tables")
    raise TypeError(f"expected a data folder, a Dataset or a mapping of tables, got {type(data)}")


def _content_fingerprint(tables: Mapping[str, pa.Table]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, tables[name].schema) as writer:
            writer.write_table(tables[name].combine_chunks())
        digest.update(name.encode() + b"\0" + sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]


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
