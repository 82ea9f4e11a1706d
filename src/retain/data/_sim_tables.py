"""Turn the simulator's numpy columns into contract tables (Arrow-backed pandas) and Parquet.

Strings are built directly as Arrow buffers: fixed-width ids from a digit look-up table and
categorical text by ``take`` from a small dictionary, which is far faster than Python strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.atomic import atomic_file

__all__ = ["fixed_width_ids", "pandas_frame", "text_column", "timestamps", "write_parquet"]

_FOUR_DIGITS = np.array([f"{v:04d}".encode() for v in range(10_000)], dtype="S4").view(np.uint32)


def fixed_width_ids(numbers: np.ndarray, prefix: str, min_digits: int) -> pa.Array:
    """Ids like ``C0000042``: a one-letter prefix and zero-padded digits, as an Arrow array.

    The digit count is at least ``min_digits``, widened so that each id fills whole 4-byte
    words (it is then written four digits at a time from a look-up table).

    Parameters
    ----------
    numbers : numpy.ndarray
        Non-negative integers below 2**32.
    prefix : str
        A single ASCII letter.
    min_digits : int
        Minimum number of digits.

    Returns
    -------
    pyarrow.Array
        ``large_string`` array of the ids.
    """
    largest = int(numbers.max()) if numbers.size else 0
    digits = max(min_digits, len(str(largest)))
    digits += (3 - digits) % 4  # prefix + digits fill whole words
    if len(prefix) != 1 or largest >= 2**32:
        raise ValueError("ids need a one-letter prefix and numbers below 2**32")
    words = (1 + digits) // 4
    buffer = np.empty((numbers.size, words), dtype=np.uint32)
    rest = numbers.astype(np.uint32)
    for word in range(words - 1, 0, -1):
        buffer[:, word] = _FOUR_DIGITS[rest % np.uint32(10_000)]
        rest //= np.uint32(10_000)
    leads = np.array([f"{prefix}{v:03d}".encode() for v in range(1000)], dtype="S4").view(np.uint32)
    buffer[:, 0] = leads[rest]
    offsets = np.arange(0, 4 * words * (numbers.size + 1), 4 * words, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        numbers.size, pa.py_buffer(offsets), pa.py_buffer(buffer)
    )


def text_column(codes: np.ndarray, names: list[str]) -> pa.Array:
    """Text column from integer codes into ``names``."""
    return pa.array(names, pa.large_string()).take(pa.array(codes))


def timestamps(start: np.datetime64, seconds: np.ndarray) -> np.ndarray:
    """``datetime64[us]`` from whole seconds since ``start`` (a midnight)."""
    values = seconds.astype(np.int64)  # a copy, converted in place
    values *= 1_000_000
    values += start.astype("datetime64[us]").astype(np.int64)
    return values.view("datetime64[us]")


def pandas_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from numpy arrays and Arrow string arrays (pandas ``str`` dtype)."""
    data = {}
    for name, values in columns.items():
        if isinstance(values, pa.Array):
            data[name] = pd.Series(values.to_pandas(), name=name)
        else:
            data[name] = values
    return pd.DataFrame(data, copy=False)


def write_parquet(
    frame: pd.DataFrame,
    path: Path,
    metadata: dict[str, Any] | None = None,
    dictionary: tuple[str, ...] = (),
) -> Path:
    """Write ``frame`` to ``path`` atomically, with reproducible bytes.

    Text columns other than ids, and the columns named in ``dictionary`` (e.g. amounts in
    cents that repeat), are dictionary-encoded; customer ids (sorted, they shrink several-fold)
    and timestamps are compressed with zstd, the rest with snappy. The optional ``metadata``
    is stored as the frame's ``attrs`` (``PANDAS_ATTRS``), which pandas restores on reading.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        schema_metadata = dict(table.schema.metadata or {})
        schema_metadata[b"PANDAS_ATTRS"] = json.dumps(metadata, sort_keys=True).encode()
        table = table.replace_schema_metadata(schema_metadata)
    is_id = {name: name.endswith("_id") for name in table.column_names}
    encoded = [
        field.name
        for field in table.schema
        if field.name in dictionary
        or (pa.types.is_large_string(field.type) and not is_id[field.name])
    ]
    # zstd where it is both faster and smaller (sorted customer ids, timestamps), else snappy.
    compression = {
        field.name: "zstd"
        if field.name == "customer_id" or pa.types.is_timestamp(field.type)
        else "snappy"
        for field in table.schema
    }
    with atomic_file(path) as temporary:
        pq.write_table(table, temporary, use_dictionary=encoded, compression=compression)
    return path
