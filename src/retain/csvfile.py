"""The list as CSV, as ``DataFrame.to_csv(path, index=False)`` writes it (faster), and safe to
open in a spreadsheet.

**Formula cells are neutralised.** A text cell (or column name) that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets:
an id such as ``=HYPERLINK("http://evil","click")`` would run when the retention team opens
the list (CSV injection, OWASP). Such a cell is written with a single quote in front
(``'=HYPERLINK(...)``), which spreadsheets show as text. Text that is a plain number
(``-5``, ``+1.5``, ``-2e3``) is not a formula and is written as it is; numeric columns are
never touched (``-5.0`` stays a number). Parquet files keep the raw values.

pandas formats every value in Python and hands rows to the ``csv`` module: about 9 s for a list
of 630,000 customers. Here each column is formatted as pandas would, with Arrow compute (text,
integers, dates, booleans) and ``repr`` only for the floats Arrow writes another way, then
joined into lines. Columns of other types, and text holding a line break, go through pandas.

pandas writes: a header of the column names; ``True``/``False``; integers as they are; dates
``YYYY-MM-DD``; floats as ``repr`` does (``100.0``, ``1e-05``), missing values as nothing;
text in double quotes only when it holds a comma or a double quote (doubled). Apart from the
neutralised cells, the bytes are those pandas writes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FORMULA_START", "neutralise_frame", "neutralise_text", "write_csv"]

#: Rows formatted and written at a time.
BATCH_ROWS = 100_000
SEPARATOR = ","
LINE_END = "\n"
#: Arrow writes floats above 0 and below this positionally (``0.00001`` for ``1e-05``), and
#: ``repr`` does not; any float it writes with an exponent goes through ``repr`` too.
POSITIONAL_FROM = 1e-4
#: A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = "^[=+\\-@\t\r]"
#: ... unless the whole cell is a plain number, which a spreadsheet reads as that number.
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_GUARD = "'"


def neutralise_text(text: str) -> str:
    """``text`` with a single quote in front when a spreadsheet would take it for a formula."""
    if text.startswith(FORMULA_START) and not re.match(_PLAIN_NUMBER, text):
        return _GUARD + text
    return text


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are :func:`neutralise_text`-ed
    (numbers, dates and missing values unchanged), for writers other than :func:`write_csv`."""
    safe = frame.copy()
    for name in safe.columns:
        column = safe[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
            safe[name] = column.map(
                lambda value: neutralise_text(value) if isinstance(value, str) else value
            )
    safe.columns = [neutralise_text(str(name)) for name in safe.columns]
    return safe


def write_csv(frame: pd.DataFrame | pa.Table, path: str | Path) -> None:
    """Write ``frame`` to ``path`` as ``frame.to_csv(path, index=False)`` would.

    Parameters
    ----------
    frame : pandas.DataFrame or pyarrow.Table
        Columns of text, integers, floats, booleans or dates (``datetime.date`` objects); an
        Arrow table is written as the frame ``to_pandas()`` makes of it.
    path : str or Path
        The CSV file (replaced).
    """
    table = _table(frame)
    if table is None:
        frame = frame.to_pandas() if isinstance(frame, pa.Table) else frame
        neutralise_frame(frame).to_csv(path, index=False)
        return
    with Path(path).open("wb") as handle:
        handle.write(
            (SEPARATOR.join(_quoted_name(n) for n in table.column_names) + LINE_END).encode()
        )
        for start in range(0, table.num_rows, BATCH_ROWS):
            batch = table.slice(start, BATCH_ROWS)
            cells = [_cells(batch.column(i).combine_chunks()) for i in range(batch.num_columns)]
            lines = pc.binary_join_element_wise(*cells, SEPARATOR)
            lines = pc.binary_join_element_wise(lines, "", LINE_END)  # each line, then its end
            handle.write(_text_bytes(lines))


def _table(frame: pd.DataFrame | pa.Table) -> pa.Table | None:
    """``frame`` as Arrow when every column can be formatted here, else ``None``."""
    try:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(
            frame, preserve_index=False)  # fmt: skip
    except (pa.ArrowException, TypeError, ValueError):
        return None
    columns = []
    for values in table.columns:
        if pa.types.is_dictionary(values.type) and _is_text(values.type.value_type):
            values = values.cast(values.type.value_type)  # categoricals of text: the text
        kind = values.type
        known = pa.types.is_integer(kind) or kind == pa.float64() or pa.types.is_boolean(kind)
        if not (known or _is_text(kind) or pa.types.is_date32(kind)):
            return None  # float32 among them: pandas writes its own repr
        if _is_text(kind) and pc.any(pc.match_substring_regex(values, "[\r\n]")).as_py():
            return None  # line breaks: the csv module's rules for them are its own
        columns.append(values)
    return pa.Table.from_arrays(columns, names=table.column_names) if columns else None


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _quoted_name(name: object) -> str:
    return _quote(neutralise_text(str(name)))


def _quote(text: str) -> str:
    if SEPARATOR in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _cells(values: pa.Array) -> pa.Array:
    """One column's cells as text, missing values empty."""
    kind = values.type
    if pa.types.is_floating(kind):
        cells = _floats(values)
    elif pa.types.is_boolean(kind):
        cells = pc.if_else(values, "True", "False")
    elif _is_text(kind):
        values = _neutralised(values.cast(pa.string()))
        needs = pc.or_(pc.match_substring(values, SEPARATOR), pc.match_substring(values, '"'))
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        cells = pc.if_else(needs, quoted, values)
    else:  # integers, dates
        cells = values.cast(pa.string())
    return pc.fill_null(cells.cast(pa.string()), "")


def _neutralised(values: pa.Array) -> pa.Array:
    """Text cells a spreadsheet would take for formulas, with a single quote in front."""
    risky = pc.and_(
        pc.match_substring_regex(values, _FORMULA_START),
        pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER)),
    )
    if not pc.any(risky).as_py():
        return values
    guarded = pc.binary_join_element_wise(_GUARD, values, "")
    return pc.if_else(pc.fill_null(risky, False), guarded, values)


def _floats(values: pa.Array) -> pa.Array:
    """Floats as ``repr`` writes them (NaN missing): Arrow's shortest form, with ``.0`` added to
    whole numbers; the few Arrow writes in another notation through ``repr`` itself."""
    numbers = values.to_numpy(zero_copy_only=False)
    text = pc.if_else(pc.is_nan(values), pa.scalar(None, pa.string()), values.cast(pa.string()))
    exponent = pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    tiny = (numbers != 0) & (np.abs(numbers) < POSITIONAL_FROM)
    whole = np.isfinite(numbers) & (numbers == np.floor(numbers))  # Arrow: "100", "-0"
    text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    rows = np.flatnonzero(exponent | tiny)
    if len(rows) == 0:
        return text
    cells = text.to_numpy(zero_copy_only=False).astype(object)
    cells[rows] = [repr(number) for number in numbers[rows].tolist()]
    return pa.array(cells, pa.string())


def _text_bytes(lines: pa.Array) -> bytes:
    """The characters of a text array without nulls, end to end."""
    lines = lines.cast(pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    data = lines.buffers()[2]
    return data[int(offsets[0]) : int(offsets[len(lines)])].to_pybytes()
