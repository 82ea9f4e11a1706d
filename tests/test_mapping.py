"""Column mappings: other names, files, separators, formats and zones; bad mappings fail clearly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retain.data import Mapping, load_dataset, load_mapping
from retain.errors import ConfigError, DataError

PURCHASES = """ID      date      dollars
00123   20240301  19.99
00123   20240315  -5.00
77      20240302  120
"""

MAPPING = """\
transactions:
  file: purchases.txt
  separator: whitespace
  columns: {customer_id: ID, timestamp: date, amount: dollars}
  timestamp_format: "%Y%m%d"
customers:
  columns: {customer_id: cust, signup_date: joined}
  date_format: "%d/%m/%Y"
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def mapped_data(tmp_path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    write(data / "purchases.txt", PURCHASES)
    write(data / "customers.csv", "cust,joined\n00123,31/01/2023\n77,01/02/2023\n")
    return data, write(tmp_path / "mapping.yaml", MAPPING)


def test_whitespace_file_with_other_names_and_date_format_loads(mapped_data):
    data, mapping = mapped_data
    dataset = load_dataset(data, mapping=mapping)
    transactions = dataset.transactions
    assert transactions["customer_id"].tolist() == ["00123", "00123", "77"]
    assert transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-15"),
        pd.Timestamp("2024-03-02"),
    ]
    assert transactions["amount"].tolist() == [19.99, -5.0, 120.0]
    assert transactions["timestamp"].dtype == "datetime64[us]"
    assert dataset.customers["signup_date"].tolist() == [
        pd.Timestamp("2023-01-31"),
        pd.Timestamp("2023-02-01"),
    ]
    assert dataset.derived_customers == 0
    assert dataset.files["transactions"] == str(data / "purchases.txt")


def test_mapping_as_dict_or_loaded_object_gives_the_same_tables(mapped_data):
    data, mapping_file = mapped_data
    from_file = load_dataset(data, mapping=mapping_file)
    loaded = load_mapping(mapping_file)
    assert isinstance(loaded, Mapping)
    assert loaded.table("transactions").columns["amount"] == "dollars"
    import yaml

    as_dict = yaml.safe_load(mapping_file.read_text())
    for other in (load_dataset(data, mapping=loaded), load_dataset(data, mapping=as_dict)):
        pd.testing.assert_frame_equal(other.transactions, from_file.transactions)


def test_mapping_text_is_part_of_the_fingerprint(mapped_data, tmp_path):
    data, mapping = mapped_data
    other = write(tmp_path / "other.yaml", MAPPING + "# a comment\n")
    assert load_dataset(data, mapping=mapping).fingerprint != load_dataset(data, other).fingerprint


def test_timezone_applies_to_naive_timestamps_only(tmp_path):
    write(
        tmp_path / "transactions.csv",
        "customer_id,timestamp,amount\n"
        "C1,2024-01-15 12:00,1\n"  # winter: UTC+1
        "C1,2024-07-15 12:00,2\n"  # summer: UTC+2
        "C1,2024-07-15T12:00:00+00:00,3\n",  # explicit offset wins
    )
    dataset = load_dataset(tmp_path, {"transactions": {"timezone": "Europe/Berlin"}})
    assert dataset.transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-01-15 11:00"),
        pd.Timestamp("2024-07-15 10:00"),
        pd.Timestamp("2024-07-15 12:00"),
    ]


def test_timezone_applies_to_naive_parquet_timestamps(tmp_path):
    stamps = pd.to_datetime(["2024-01-15 12:00", "2024-03-31 02:30"])  # 02:30 does not exist
    frame = pd.DataFrame({"customer_id": ["C1", "C1"], "timestamp": stamps, "amount": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "transactions.parquet")
    dataset = load_dataset(tmp_path, {"transactions": {"timezone": "Europe/Berlin"}})
    assert dataset.transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-01-15 11:00"),
        pd.Timestamp("2024-03-31 01:00"),  # moved forward to 03:00 local = 01:00 UTC
    ]


def test_semicolon_separator_and_latin1_encoding(tmp_path):
    write(
        tmp_path / "transactions.csv",
        "customer_id;timestamp;amount;category\nC1;2024-03-01;10;café\n",
        encoding="latin-1",
    )
    mapping = {"transactions": {"separator": ";", "encoding": "latin-1"}}
    dataset = load_dataset(tmp_path, mapping)
    assert dataset.transactions["category"].tolist() == ["café"]


def test_mapped_column_missing_from_the_file_names_file_and_column(mapped_data, tmp_path):
    data, _ = mapped_data
    mapping = write(tmp_path / "typo.yaml", MAPPING.replace("amount: dollars", "amount: usd"))
    with pytest.raises(DataError) as caught:
        load_dataset(data, mapping=mapping)
    (problem,) = caught.value.problems
    assert problem.table == "transactions"
    assert problem.column == "usd"
    assert problem.file == str(data / "purchases.txt")
    assert "dollars" in problem.problem  # lists the columns that are there


def test_file_named_in_mapping_must_exist(tmp_path):
    write(tmp_path / "transactions.csv", "customer_id,timestamp,amount\nC1,2024-03-01,1\n")
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path, {"transactions": {"file": "orders.csv"}})
    (problem,) = caught.value.problems
    assert problem.file == str(tmp_path / "orders.csv") and "does not exist" in problem.problem


def test_mapped_format_mismatch_quotes_the_raw_dates(mapped_data):
    data, mapping = mapped_data
    write(data / "purchases.txt", PURCHASES.replace("20240315", "2024-03-15"))
    with pytest.raises(DataError) as caught:
        load_dataset(data, mapping=mapping)
    (problem,) = caught.value.problems
    assert problem.column == "timestamp"
    assert problem.samples == ("2024-03-15",)
    assert "%Y%m%d" in problem.problem


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("transaction:\n  file: x.csv\n", "transaction", "did you mean 'transactions'"),
        ("transactions:\n  colums: {amount: x}\n", "transactions.colums", "did you mean 'columns'"),
        ("transactions:\n  columns: {amout: x}\n", "transactions.columns.amout", "'amount'"),
        ("customers:\n  timestamp_format: '%Y'\n", "customers.timestamp_format", "date_format"),
        ("transactions:\n  separator: '::'\n", "transactions.separator", "whitespace"),
        ("transactions:\n  timezone: Mars/Olympus\n", "transactions.timezone", "IANA"),
        ("transactions:\n  timestamp_format: YYYYMMDD\n", "transactions.timestamp_format", "%"),
        ("transactions:\n  encoding: klingon\n", "transactions.encoding", "encoding"),
        (
            "transactions:\n  columns: {amount: x, customer_id: x}\n",
            "transactions.columns",
            "more than once",
        ),
        ("- transactions\n", "", "expected a mapping of tables"),
        ("transactions:\n  header: no thanks\n", "transactions.header", "true or false"),
        (
            "transactions:\n  header: false\n  columns: {amount: dollars}\n",
            "transactions.columns.amount",
            "position (1 = the first field",
        ),
        (
            "transactions:\n  header: false\n  columns: {amount: 0}\n",
            "transactions.columns.amount",
            "position",
        ),
        (
            "transactions:\n  header: false\n  columns: {amount: 2, timestamp: 2}\n",
            "transactions.columns",
            "position '2' is mapped more than once",
        ),
        ("transactions:\n  duplicates: remove\n", "transactions.duplicates", "auto, keep, drop"),
        ("customers:\n  duplicates: drop\n", "customers.duplicates", "unknown key"),
    ],
)
def test_bad_mapping_is_a_config_error_naming_file_and_key(tmp_path, text, key, hint):
    path = write(tmp_path / "mapping.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"{key}:" in message
    assert hint in message


def test_mapping_that_is_not_yaml_or_absent(tmp_path):
    broken = write(tmp_path / "broken.yaml", "transactions: {columns: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_mapping(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_dataset(tmp_path, mapping=tmp_path / "missing.yaml")


# A header-less, whitespace-separated export as many shops write them (id, date, items, amount;
# ids with leading zeros, repeated same-day purchases without an order id).
HEADERLESS = """00001 19970101  1  11.77
00002 19970112  1  12.00
00002 19970112  5  77.00
00003 19970102  2  20.76
00003 19970330  2  20.76
00003 19970330  2  20.76
"""
HEADERLESS_MAPPING = """\
transactions:
  file: purchases.txt
  separator: whitespace
  header: false
  columns: {customer_id: 1, timestamp: 2, quantity: 3, amount: 4}
  timestamp_format: "%Y%m%d"
"""


def test_headerless_file_with_columns_by_position_loads(tmp_path):
    data = tmp_path / "data"
    write(data / "purchases.txt", HEADERLESS)
    mapping = write(tmp_path / "mapping.yaml", HEADERLESS_MAPPING)
    dataset = load_dataset(data, mapping=mapping)
    transactions = dataset.transactions
    assert transactions["customer_id"].tolist() == ["00001", "00002", "00002", *["00003"] * 3]
    assert transactions["amount"].tolist() == [11.77, 12.0, 77.0, 20.76, 20.76, 20.76]
    assert transactions["quantity"].tolist() == [1, 1, 5, 2, 2, 2]
    assert transactions["timestamp"].iloc[0] == pd.Timestamp("1997-01-01")
    assert dataset.duplicates_dropped == 0  # same-day repeats without order ids are kept
    assert any("kept 1 row identical" in warning for warning in dataset.warnings)
    drop = write(tmp_path / "drop.yaml", HEADERLESS_MAPPING + "  duplicates: drop\n")
    dropped = load_dataset(data, mapping=drop)
    assert dropped.duplicates_dropped == 1 and len(dropped.transactions) == 5


def test_headerless_fields_not_mapped_are_kept_by_position(tmp_path):
    write(tmp_path / "transactions.csv", "C1,2024-03-01,10,web\nC2,2024-03-02,20,shop\n")
    mapping = {"transactions": {"header": False, "columns": {"customer_id": 1, "timestamp": 2,
                                                             "amount": 3}}}  # fmt: skip
    dataset = load_dataset(tmp_path, mapping)
    assert dataset.transactions["column_4"].tolist() == ["web", "shop"]
    assert len(dataset.transactions) == 2  # the first line is data, not a header


def test_headerless_problems_speak_of_positions(tmp_path):
    write(tmp_path / "transactions.csv", "C1,2024-03-01,10\n")
    mapping = {"transactions": {"header": False, "columns": {"customer_id": 1, "amount": 5}}}
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path, mapping)
    problems = {problem.column: problem.problem for problem in caught.value.problems}
    expected = "field 5 (mapped to amount) is not in the file: its lines have 3 fields"
    assert expected in problems["amount"]
    assert "columns: {timestamp: N}" in problems["timestamp"]


def test_headerless_parquet_is_refused(tmp_path):
    frame = pd.DataFrame({"customer_id": ["C1"], "timestamp": ["2024-03-01"], "amount": [1.0]})
    frame.to_parquet(tmp_path / "transactions.parquet")
    with pytest.raises(DataError, match="header: false is for text files"):
        load_dataset(tmp_path, {"transactions": {"header": False}})
