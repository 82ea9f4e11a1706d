"""Fingerprints of data folders: what names a folder's content, wherever its files lie.

A fingerprint is the first 16 hex digits of a SHA-256 over the mapping text and the bytes of
every file read, each named relative to its table: the same files give the same fingerprint in
any folder, and any change to a file or to the mapping gives another. It is known without
reading a table (:func:`folder_fingerprint`), so a store can tell data it has seen before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from retain.data.files import TableSource, locate_table
from retain.data.mapping import Mapping, resolve_mapping
from retain.data.schemas import TABLES
from retain.errors import DataError, DataProblem

__all__ = ["FolderFingerprint", "file_stamps", "fingerprint", "folder_fingerprint"]


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
    """The fingerprint :func:`~retain.data.load_dataset` gives a data folder, without reading
    a table.

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
