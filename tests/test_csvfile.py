"""The list's CSV writer: byte for byte what pandas writes, on awkward values, with formula
cells neutralised (safe to open in a spreadsheet) and numbers left as they are."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retain.csvfile import neutralise_frame, neutralise_text, write_csv

TEXTS = np.array(
    ["a,b", 'say "hi"', "", "plain", "no purchase for 1,234 days; usually buys every 21", None,
     "ü", " lead", "50%", '=HYPERLINK("http://x.example","click")', "-5", "+1.5", "@SUM(A1)",
     "-1+cmd|' /C calc'!A0", "\tindented", "-", "-2e3"],
    dtype=object,
)  # fmt: skip


@pytest.fixture(scope="module")
def awkward() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5_000
    spread = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 22, n)
    spread[:500] = np.round(spread[:500])  # whole numbers, some written with an exponent
    spread[500:520] = [0.0, -0.0, np.nan, np.inf, -np.inf] * 4
    unit = rng.random(n)
    unit[:50] = rng.random(50) * 1e-5  # below 1e-4: another notation in Arrow
    return pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "spread": spread,
            "unit": unit,
            "text": TEXTS[rng.integers(0, len(TEXTS), n)],
            "arrow_text": pd.Series(TEXTS[rng.integers(0, len(TEXTS), n)], dtype="str"),
            "flag": rng.random(n) < 0.5,
            "day": [datetime.date(2026, 1, 1)] * n,
            "segment": pd.Categorical(rng.choice(["A", "B,C"], n)),
            "count": pd.array(np.where(rng.random(n) < 0.1, None, 5), dtype="Int64"),
            "odd,name": 1.5,
        }
    )


def test_bytes_equal_pandas_to_csv(awkward, tmp_path):
    neutralise_frame(awkward).to_csv(tmp_path / "pandas.csv", index=False)
    write_csv(awkward, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_an_arrow_table_is_written_as_its_pandas_frame(awkward, tmp_path):
    table = pa.Table.from_pandas(awkward.drop(columns=["segment"]), preserve_index=False)
    neutralise_frame(table.to_pandas()).to_csv(tmp_path / "pandas.csv", index=False)
    write_csv(table, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_columns_it_cannot_format_go_through_pandas(tmp_path):
    frame = pd.DataFrame(
        {"small": np.array([0.1, 2.5], dtype="float32"), "text": ["line\nbreak", "=1+1"]}
    )
    neutralise_frame(frame).to_csv(tmp_path / "pandas.csv", index=False)
    write_csv(frame, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    assert "'=1+1" in (tmp_path / "ours.csv").read_text()


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+cmd", "'+cmd"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-", "'-"),
        ("-5", "-5"),  # a number, not a formula: left as it is
        ("+1.5", "+1.5"),
        ("-2.5e-3", "-2.5e-3"),
        ("12-3", "12-3"),
        (" =1", " =1"),  # a leading blank: text to every spreadsheet
    ],
)
def test_formula_cells_are_neutralised_and_numbers_are_not(text, written):
    assert neutralise_text(text) == written


def test_numbers_and_the_parquet_keep_their_values(tmp_path):
    frame = pd.DataFrame(
        {"customer_id": ["=1+1", "-7", "c"], "amount": [-5.0, -0.5, 1e-7], "count": [-3, 0, 2]}
    )
    write_csv(frame, tmp_path / "list.csv")
    back = pd.read_csv(tmp_path / "list.csv", dtype={"customer_id": str})
    assert back["customer_id"].tolist() == ["'=1+1", "-7", "c"]
    assert back["amount"].tolist() == [-5.0, -0.5, 1e-7]
    assert back["count"].tolist() == [-3, 0, 2]
    assert frame["customer_id"].tolist() == ["=1+1", "-7", "c"]  # the frame is not changed
