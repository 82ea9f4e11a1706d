"""Find each table in a data folder and read it as it is: CSV as text, Parquet with pyarrow.

Nothing here interprets values; :mod:`retain.data.validation` does. CSV cells are read as
strings (no type guessing, empty cells stay ``""``), so ids keep their leading zeros and problems
can quote exactly what the file says. Problems with the files themselves (missing, ambiguous,
empty, unreadable) raise :class:`~retain.errors.DataError` with one :class:`DataProblem`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from retain.data.mapping import TableMapping, position_name
from retain.errors import DataError, DataProblem

__all__ = ["RawChunk", "TableSource", "iter_chunks", "locate_table", "raw_schema", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
SNIFF_BYTES = 8192
PANDAS_INDEX_COLUMN = re.compile(r"__index_level_\d+__")
#: How pandas renames the second "amount" of a header: "amount.1".
MANGLED_NAME = re.compile(r".+\.\d+")

SourceKind = Literal["csv", "parquet", "parquet_dir"]


@dataclass(frozen=True)
class TableSource:
    """Where one table is stored.

    Parameters
    ----------
    table : str
        Canonical table name.
    path : Path
        The file, or the folder of Parquet parts.
    kind : {"csv", "parquet", "parquet_dir"}
        How to read it.
    parts : tuple of Path
        Every file that is read (the file itself, or the folder's parts in sorted order).
    """

    table: str
    path: Path
    kind: SourceKind
    parts: tuple[Path, ...]


def locate_table(data_dir: Path, table: str, mapping: TableMapping) -> TableSource | None:
    """Find table ``table`` in ``data_dir`` (or the file the mapping names).

    Parameters
    ----------
    data_dir : Path
        The data folder.
    table : str
        ``customers``, ``transactions`` or ``interactions``.
    mapping : TableMapping
        Its mapping; ``mapping.file`` replaces the default names.

    Returns
    -------
    TableSource or None
        ``None`` when an optional table is absent.

    Raises
    ------
    DataError
        When the mapped file does not exist, two forms of the table exist, ``transactions`` is
        absent, or a folder holds no Parquet parts.
    """
    if mapping.file is not None:
        path = data_dir / mapping.file
        if not path.exists():
            raise _error(table, path, "file named in the mapping does not exist")
        _check_inside(table, path, data_dir)
        return _headed(_source(table, path), mapping)
    candidates = [data_dir / f"{table}.csv", data_dir / f"{table}.parquet", data_dir / table]
    found = [path for path in candidates if path.exists()]
    if len(found) > 1:
        names = " and ".join(path.name for path in found)
        raise _error(table, data_dir, f"two forms of the table, {names}; keep only one")
    if found:
        return _headed(_source(table, found[0]), mapping)
    if table == "transactions":
        raise _error(
            table,
            data_dir,
            "no transactions table: expected transactions.csv, transactions.parquet or a "
            "folder transactions/ of Parquet parts",
        )
    return None


@dataclass(frozen=True)
class RawChunk:
    """Consecutive rows of a table as read.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows as :func:`read_table` gives them (CSV: text; Parquet: its own types), with a
        fresh ``RangeIndex``: what parsing and checking read.
    stored : pyarrow.Table or None
        The same rows as stored, for Parquet read with ``stored=True`` (``None`` otherwise, and
        for a CSV file, read as text): columns kept as they are (extra columns) are taken from
        here, so they have the types a whole read gives them.
    """

    frame: pd.DataFrame
    stored: pa.Table | None = None

    def arrow(self, names: list[str]) -> pa.Table:
        """Columns ``names`` as Arrow: as stored, or (CSV) from the text of :attr:`frame`."""
        if self.stored is not None:
            return self.stored.select(names)
        return pa.Table.from_pandas(self.frame[names], preserve_index=False)


def read_table(source: TableSource, mapping: TableMapping) -> pd.DataFrame:
    """Read a located table as found (CSV: all cells as text; Parquet: its own types).

    Parameters
    ----------
    source : TableSource
        From :func:`locate_table`.
    mapping : TableMapping
        Separator and encoding of a CSV.

    Returns
    -------
    pandas.DataFrame
        With a fresh ``RangeIndex`` and at least one row.

    Raises
    ------
    DataError
        When a file is empty (0 bytes or no rows), corrupt, binary or undecodable.
    """
    if source.kind == "csv":
        _check_sizes(source)
        frame = _read_csv(source, mapping)
        _check_rows(source, len(frame))
        return frame
    return _to_pandas(_read_parquet(source), self_destruct=True)


def iter_chunks(
    source: TableSource, mapping: TableMapping, rows: int, *, stored: bool = False
) -> Iterator[RawChunk]:
    """Read a located table as :func:`read_table` does, ``rows`` rows at a time (with
    ``stored``, Parquet rows also as stored: see :class:`RawChunk`).

    The chunks' frames hold the rows :func:`read_table` gives, in its order and with its
    columns; a Parquet chunk is converted to pandas on its own, so a column may have another
    dtype than in a whole read (integers with missing values are floats). A Parquet file is
    read a batch at a time, so at most two batches are held (the next one is read meanwhile);
    a CSV file (as text) and a folder of parts (as Arrow) are read whole, then sliced.

    Raises
    ------
    DataError
        As :func:`read_table` (empty, corrupt, binary or undecodable files).
    """
    if source.kind == "csv":
        frame = read_table(source, mapping)
        for start in range(0, len(frame), rows):
            yield RawChunk(frame.iloc[start : start + rows].reset_index(drop=True))
        return
    if source.kind == "parquet_dir" or raw_schema(source) is None:
        table = _read_parquet(source)  # raises for an empty or unreadable file
        for start in range(0, table.num_rows, rows):
            yield _chunk(table.slice(start, rows), stored)
        return
    batches = pq.ParquetFile(source.path).iter_batches(batch_size=rows)
    with ThreadPoolExecutor(max_workers=1) as reader:  # the next batch read meanwhile
        ahead = reader.submit(_next_chunk, batches, stored)
        while True:
            try:
                chunk = ahead.result()
            except (pa.ArrowException, OSError) as error:
                raise _unreadable(source.table, source.path, error) from None
            if chunk is None:
                return
            _check_unique_names(source, [str(name) for name in chunk.frame.columns])
            ahead = reader.submit(_next_chunk, batches, stored)
            yield chunk
            del chunk


def _next_chunk(batches: Iterator[pa.RecordBatch], stored: bool) -> RawChunk | None:
    batch = next(batches, None)
    if batch is None:
        return None
    return _chunk(_without_index(pa.Table.from_batches([batch])), stored)


def _chunk(table: pa.Table, stored: bool) -> RawChunk:
    if stored:  # the Arrow table is kept: not self-destructing
        return RawChunk(_to_pandas(table, self_destruct=False), table)
    return RawChunk(_to_pandas(table, self_destruct=True))


def raw_schema(source: TableSource) -> pa.Schema | None:
    """The Arrow schema of a Parquet table with rows, ``None`` otherwise (a CSV file is read as
    text; an unreadable or empty Parquet file is :func:`read_table`'s to report)."""
    if source.kind == "csv":
        return None
    try:
        if source.kind == "parquet":
            metadata = pq.read_metadata(source.path)
            return metadata.schema.to_arrow_schema() if metadata.num_rows else None
        return pa.unify_schemas(
            [pq.read_schema(part) for part in source.parts], promote_options="permissive"
        )
    except (pa.ArrowException, OSError, TypeError):
        return None


def _check_inside(table: str, path: Path, data_dir: Path) -> None:
    """Refuse a mapped file that resolves outside the data folder (``..``, a symlink out).

    The data folder is the boundary of what a mapping may make retain read (and quote in
    error messages); the folder itself may be a link to anywhere.
    """
    if not path.resolve().is_relative_to(data_dir.resolve()):
        raise _error(
            table, path,
            f"resolves outside the data folder {data_dir} (to {path.resolve()}); the mapping "
            "may only name files inside it",
        )  # fmt: skip


def _source(table: str, path: Path) -> TableSource:
    if path.is_dir():
        parts = tuple(sorted(part for part in path.rglob("*.parquet") if _is_data_part(part, path)))
        if not parts:
            raise _error(table, path, "folder holds no .parquet files")
        return TableSource(table, path, "parquet_dir", parts)
    kind: SourceKind = "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"
    return TableSource(table, path, kind, (path,))


def _headed(source: TableSource, mapping: TableMapping) -> TableSource:
    """Refuse ``header: false`` for Parquet, whose columns always have names."""
    if not mapping.header and source.kind != "csv":
        raise _error(
            source.table,
            source.path,
            "header: false is for text files; Parquet names its columns, so map them by name",
        )
    return source


def _is_data_part(part: Path, folder: Path) -> bool:
    """Skip hidden and bookkeeping files (``.part.crc``, ``_SUCCESS``, ``_temporary/``)."""
    return not any(name.startswith((".", "_")) for name in part.relative_to(folder).parts)


def _read_csv(source: TableSource, mapping: TableMapping) -> pd.DataFrame:
    _check_text(source, mapping)
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently lose fields; make that an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                source.path,
                sep=mapping.csv_separator,
                dtype=str,
                na_filter=False,  # keep every cell as written; validation decides what is missing
                encoding=mapping.csv_encoding,
                engine="c",
                index_col=False,  # never turn surplus fields into an index
                header="infer" if mapping.header else None,
            )
    except pd.errors.ParserWarning:
        raise _error(
            source.table,
            source.path,
            "cannot parse as CSV: some rows have more fields than the header "
            "(wrong separator, or a separator at the end of lines?)",
        ) from None
    except UnicodeDecodeError as error:
        raise _error(
            source.table,
            source.path,
            f"cannot decode the text as {mapping.encoding} ({error.reason} at byte "
            f"{error.start}); set `encoding` in a mapping file",
        ) from None
    except pd.errors.EmptyDataError:
        raise _error(source.table, source.path, "file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, ValueError) as error:
        message = str(error).strip().replace("\n", " ")
        raise _error(source.table, source.path, f"cannot parse as CSV: {message}") from None
    if not mapping.header:
        frame.columns = [position_name(number) for number in range(1, frame.shape[1] + 1)]
        return frame
    names = [str(name).strip() for name in frame.columns]
    if any(MANGLED_NAME.fullmatch(name) for name in names):  # pandas renames "a", "a" to a.1
        names = _raw_header(source, mapping, len(names)) or names
    _check_unique_names(source, names)
    frame.columns = names
    return frame


def _raw_header(source: TableSource, mapping: TableMapping, width: int) -> list[str] | None:
    """The header row as written (pandas renames repeated names), ``None`` if unreadable."""
    try:
        header = pd.read_csv(
            source.path, sep=mapping.csv_separator, header=None, nrows=1, dtype=str,
            na_filter=False, encoding=mapping.csv_encoding, engine="c", index_col=False,
        )  # fmt: skip
    except (pd.errors.ParserError, ValueError):
        return None
    names = [str(name).strip() for name in header.iloc[0].tolist()]
    return names if len(names) == width else None


def _check_unique_names(source: TableSource, names: list[str]) -> None:
    """Refuse a header naming a column twice: which copy is meant cannot be guessed."""
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    repeated = [name for name, count in seen.items() if count > 1]
    if repeated:
        raise DataError(
            DataProblem(
                source.table, str(source.path), repeated[0],
                f"the header names this column {seen[repeated[0]]} times"
                + (f" (and {len(repeated) - 1} more repeated names)" if len(repeated) > 1 else "")
                + "; rename or drop the copies",
            )
        )  # fmt: skip


def _check_text(source: TableSource, mapping: TableMapping) -> None:
    """Refuse binary files before pandas turns them into nonsense columns."""
    with source.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(b"PAR1"):
        raise _error(source.table, source.path, "this is a Parquet file; name it .parquet")
    wide_encoding = any(width in mapping.csv_encoding for width in ("16", "32"))
    if b"\x00" in head and not wide_encoding:
        raise _error(source.table, source.path, "binary content, not a text (CSV) file")


def _read_parquet(source: TableSource) -> pa.Table:
    """A Parquet file or folder of parts read whole, without pandas' index columns; refused
    when a part is empty or unreadable, a column is named twice, or there are no rows."""
    _check_sizes(source)
    try:
        if source.kind == "parquet":
            table = pq.read_table(source.path)
        else:
            table = _read_parquet_parts(source)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(source.table, source.path, error) from None
    table = _without_index(table)
    _check_unique_names(source, table.column_names)
    _check_rows(source, table.num_rows)
    return table


def _without_index(table: pa.Table) -> pa.Table:
    """Drop the columns pandas writes for its index (they come back as ordinary columns)."""
    index_columns = [name for name in table.column_names if PANDAS_INDEX_COLUMN.fullmatch(name)]
    return table.drop_columns(index_columns) if index_columns else table


def _to_pandas(table: pa.Table, *, self_destruct: bool) -> pd.DataFrame:
    """``table`` as pandas: every column with the dtype Arrow's conversion gives it;
    ``self_destruct`` frees the Arrow memory as it goes (``table`` is unusable after)."""
    return table.to_pandas(
        ignore_metadata=True,
        date_as_object=False,
        split_blocks=True,
        self_destruct=self_destruct,
    )


def _check_sizes(source: TableSource) -> None:
    for part in source.parts:
        if part.stat().st_size == 0:
            raise _error(source.table, part, "file is empty (0 bytes)")


def _check_rows(source: TableSource, rows: int) -> None:
    if rows == 0:
        only = " (only a header)" if source.kind == "csv" else ""
        raise _error(source.table, source.path, f"no rows{only}; remove the file if it has no data")


def _unreadable(table: str, path: Path, error: BaseException) -> DataError:
    message = str(error).strip().replace("\n", " ")
    return _error(table, path, f"cannot read as Parquet: {message}")


def _read_parquet_parts(source: TableSource) -> pa.Table:
    """Read a folder of parts (Hive ``key=value`` sub-folders become columns)."""
    schemas = []
    for part in source.parts:
        try:
            schemas.append(pq.read_schema(part))
        except (pa.ArrowException, OSError) as error:
            raise _error(source.table, part, f"cannot read as Parquet: {error}") from None
    paths = [str(part) for part in source.parts]
    options = {"format": "parquet", "partitioning": "hive", "partition_base_dir": str(source.path)}
    discovered = ds.dataset(paths, **options)
    try:
        schema = pa.unify_schemas([discovered.schema, *schemas], promote_options="permissive")
    except (pa.ArrowException, TypeError) as error:
        raise _error(
            source.table, source.path, f"parts disagree on column types: {error}"
        ) from None
    return ds.dataset(paths, schema=schema, **options).to_table()


def _error(table: str, path: Path, problem: str) -> DataError:
    return DataError(DataProblem(table, str(path), None, problem))
