"""The data contract: every rule, on small files built in tmp_path, read by the real loaders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data import TABLES, canonical_schema, load_dataset, summarize
from retain.errors import DataError, DataProblem

CUSTOMERS = "customer_id,signup_date,region\nC1,2023-01-05,EU\nC2,2023-02-10,US\n"
TRANSACTIONS = (
    "customer_id,timestamp,amount\n"
    "C1,2024-03-01T10:00:00,10.5\n"
    "C2,2024-03-02T11:30:00,20\n"
    "C1,2024-03-05T09:15:00,-4.25\n"
)
INTERACTIONS = (
    "customer_id,timestamp,type,value\nC1,2024-03-01,web_visit,\nC2,2024-03-03,survey,4\n"
)


def make_data(root: Path, **tables: str | bytes) -> Path:
    """Write ``NAME.csv`` (or the file named ``NAME`` with a dot) for each table given."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in tables.items():
        path = root / (name if "." in name else f"{name}.csv")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def problems_of(data_dir: Path, mapping=None) -> list[DataProblem]:
    with pytest.raises(DataError) as caught:
        load_dataset(data_dir, mapping=mapping)
    return list(caught.value.problems)


def only(problems: list[DataProblem], table: str, column: str | None, words: str) -> DataProblem:
    """The single problem of ``table``/``column`` whose text contains ``words``."""
    found = [
        problem
        for problem in problems
        if problem.table == table and problem.column == column and words in problem.problem
    ]
    assert len(found) == 1, f"expected one '{words}' problem on {table}.{column}, got {problems}"
    return found[0]


def frames_to_parquet(root: Path, **frames: pd.DataFrame) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(root / f"{name}.parquet", index=False)
    return root


# --- good path -----------------------------------------------------------------------------


def assert_canonical_dtypes(dataset) -> None:
    for name in ("customers", "transactions", "interactions"):
        frame = getattr(dataset, name)
        spec = TABLES[name]
        assert list(frame.columns[: len(spec.names)]) == list(spec.names)
        for column in spec.columns:
            assert frame[column.name].dtype == column.dtype, (name, column.name)
        canonical_schema(name).validate(frame)


def test_canonical_csv_loads_with_canonical_dtypes(tmp_path):
    data = make_data(
        tmp_path, customers=CUSTOMERS, transactions=TRANSACTIONS, interactions=INTERACTIONS
    )
    dataset = load_dataset(data)
    assert_canonical_dtypes(dataset)
    assert dataset.customers["customer_id"].tolist() == ["C1", "C2"]
    assert dataset.transactions["amount"].tolist() == [10.5, 20.0, -4.25]
    assert dataset.transactions["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 10:00:00")
    assert dataset.customers["signup_date"].iloc[1] == pd.Timestamp("2023-02-10")
    assert dataset.interactions["value"].isna().tolist() == [True, False]
    assert dataset.warnings == ()
    assert dataset.files["transactions"] == str(data / "transactions.csv")


def test_parquet_files_and_parquet_folder_load_like_csv(tmp_path):
    csv = make_data(
        tmp_path / "csv", customers=CUSTOMERS, transactions=TRANSACTIONS, interactions=INTERACTIONS
    )
    expected = load_dataset(csv)
    frames = {name: getattr(expected, name) for name in ("customers", "transactions")}
    parquet = frames_to_parquet(tmp_path / "parquet", **frames)
    parts = tmp_path / "parts"
    shutil.copytree(parquet, parts)
    (parts / "transactions.parquet").unlink()
    (parts / "transactions").mkdir()
    transactions = expected.transactions
    transactions.iloc[:2].to_parquet(parts / "transactions" / "part-0.parquet", index=False)
    transactions.iloc[2:].to_parquet(parts / "transactions" / "part-1.parquet", index=False)
    (parts / "transactions" / "_SUCCESS").write_text("")
    for folder in (parquet, parts):
        dataset = load_dataset(folder)
        assert_canonical_dtypes(dataset)
        pd.testing.assert_frame_equal(dataset.customers, expected.customers)
        pd.testing.assert_frame_equal(dataset.transactions, expected.transactions)
        assert len(dataset.interactions) == 0
    assert load_dataset(parts).files["transactions"] == str(parts / "transactions")


def test_typed_parquet_ids_and_aware_timestamps_are_normalised(tmp_path):
    stamps = pd.to_datetime(["2024-03-01 10:00", "2024-07-01 10:00"]).tz_localize("Europe/Berlin")
    frame = pd.DataFrame({"customer_id": [123, 456], "timestamp": stamps, "amount": [1, 2]})
    dataset = load_dataset(frames_to_parquet(tmp_path, transactions=frame))
    assert dataset.transactions["customer_id"].tolist() == ["123", "456"]
    assert dataset.transactions["timestamp"].dtype == "datetime64[us]"
    assert dataset.transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01 09:00"),
        pd.Timestamp("2024-07-01 08:00"),
    ]
    assert dataset.transactions["amount"].dtype == "float64"


def test_timezone_offsets_become_utc_and_naive_is_utc(tmp_path):
    transactions = (
        "customer_id,timestamp,amount\n"
        "C1,2024-03-01T10:00:00+02:00,1\n"
        "C1,2024-03-01T10:00:00-05:30,2\n"
        "C1,2024-03-01T10:00:00Z,3\n"
        "C1,2024-03-01 10:00:00,4\n"
        "C1,2024-03-01,5\n"
    )
    dataset = load_dataset(make_data(tmp_path, transactions=transactions))
    assert dataset.transactions["timestamp"].dt.tz is None
    assert dataset.transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01 08:00"),
        pd.Timestamp("2024-03-01 15:30"),
        pd.Timestamp("2024-03-01 10:00"),
        pd.Timestamp("2024-03-01 10:00"),
        pd.Timestamp("2024-03-01 00:00"),
    ]


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    data = make_data(tmp_path, transactions=("\ufeff" + TRANSACTIONS).encode("utf-8"))
    dataset = load_dataset(data)
    assert dataset.transactions.columns[0] == "customer_id"
    assert len(dataset.transactions) == 3


def test_extra_columns_are_kept_after_the_canonical_ones(tmp_path):
    transactions = "store,customer_id,timestamp,amount,coupon\nS1,C1,2024-03-01,10,yes\n"
    customers = "customer_id,vip\nC1,true\n"
    dataset = load_dataset(make_data(tmp_path, transactions=transactions, customers=customers))
    assert list(dataset.transactions.columns[-2:]) == ["store", "coupon"]
    assert dataset.transactions["coupon"].tolist() == ["yes"]
    assert dataset.customers["vip"].tolist() == ["true"]


def test_numeric_looking_ids_keep_leading_zeros_in_every_table(tmp_path):
    data = make_data(
        tmp_path,
        customers="customer_id,acquisition_cost\n00123,5\n123,7\n",
        transactions="customer_id,timestamp,amount,order_id\n00123,2024-03-01,10,0007\n",
        interactions="customer_id,timestamp,type\n00123,2024-03-01,web_visit\n",
    )
    dataset = load_dataset(data)
    assert dataset.customers["customer_id"].tolist() == ["00123", "123"]
    assert dataset.transactions["customer_id"].tolist() == ["00123"]
    assert dataset.transactions["order_id"].tolist() == ["0007"]
    assert dataset.interactions["customer_id"].tolist() == ["00123"]
    assert dataset.derived_customers == 0


def test_negative_amounts_are_kept_as_returns(tmp_path):
    dataset = load_dataset(make_data(tmp_path, transactions=TRANSACTIONS))
    assert (dataset.transactions["amount"] < 0).sum() == 1
    assert summarize(dataset)["transactions"]["returns_share"] == pytest.approx(1 / 3)


def test_identical_rows_without_order_ids_are_kept_and_counted_by_default(tmp_path):
    lines = TRANSACTIONS.splitlines()
    transactions = "\n".join([*lines, lines[1], lines[1], lines[2]]) + "\n"
    dataset = load_dataset(make_data(tmp_path, transactions=transactions))
    assert dataset.duplicates_dropped == 0
    assert len(dataset.transactions) == 6
    (warning,) = [w for w in dataset.warnings if "identical" in w]
    assert "kept 3 rows identical to an earlier row (amount 41.00)" in warning
    assert "duplicates: drop" in warning


def test_duplicates_drop_drops_identical_rows_counted_and_warned(tmp_path):
    lines = TRANSACTIONS.splitlines()
    transactions = "\n".join([*lines, lines[1], lines[1], lines[2]]) + "\n"
    mapping = {"transactions": {"duplicates": "drop"}}
    dataset = load_dataset(make_data(tmp_path, transactions=transactions), mapping=mapping)
    assert dataset.duplicates_dropped == 3
    assert len(dataset.transactions) == 3
    assert dataset.transactions.index.equals(pd.RangeIndex(3))
    assert any("dropped 3 exact duplicate rows (amount 41.00" in w for w in dataset.warnings)


ORDERS = (
    "customer_id,timestamp,amount,order_id\n"
    "C1,2024-03-01,10,A1\n"
    "C1,2024-03-01,10,A1\n"  # the same order exported twice
    "C1,2024-03-02,12,A1\n"  # a repeated order id with other values: still the same order
    "C1,2024-03-09,-4,A1\n"  # a return shares its order's id
    "C1,2024-03-10,-3,A1\n"  # and so may a second, partial return
    "C2,2024-03-01,7,\n"  # no order id: identical rows are compared
    "C2,2024-03-01,7,\n"
    "C2,2024-03-01,7,B9\n"
)


@pytest.mark.parametrize(
    ("policy", "kept", "dropped", "words"),
    [
        (None, 6, 2, ["dropped 2 rows repeating the order_id", "kept 1 row identical"]),
        ("drop", 5, 3, ["dropped 2 rows repeating the order_id", "dropped 1 exact duplicate"]),
        ("keep", 8, 0, ["kept 2 rows repeating the order_id", "kept 1 row identical"]),
    ],
)
def test_repeated_order_ids_are_duplicates_and_returns_may_share_them(
    tmp_path, policy, kept, dropped, words
):
    mapping = {"transactions": {"duplicates": policy}} if policy else None
    dataset = load_dataset(make_data(tmp_path, transactions=ORDERS), mapping=mapping)
    assert (len(dataset.transactions), dataset.duplicates_dropped) == (kept, dropped)
    for text in words:
        assert any(text in warning for warning in dataset.warnings), (text, dataset.warnings)
    if policy != "keep":
        amounts = dataset.transactions.loc[dataset.transactions["order_id"] == "A1", "amount"]
        assert amounts.tolist() == [10.0, -4.0, -3.0]
    repeated = next(w for w in dataset.warnings if "order_id" in w)
    assert "(amount 22.00; e.g. 'A1')" in repeated


def test_customers_only_in_transactions_are_derived_and_warned(tmp_path):
    transactions = TRANSACTIONS + "C9,2024-04-02T18:45:00,3\nC9,2024-04-01T23:00:00,4\n"
    data = make_data(tmp_path, customers=CUSTOMERS, transactions=transactions)
    dataset = load_dataset(data)
    assert dataset.derived_customers == 1
    derived = dataset.customers.iloc[-1]
    assert derived["customer_id"] == "C9"
    assert derived["signup_date"] == pd.Timestamp("2024-04-01")  # day of the first purchase
    assert pd.isna(derived["region"])
    assert any(
        "1 customer found only in transactions" in w and "'C9'" in w for w in dataset.warnings
    )


def test_extra_columns_keep_their_values_and_derived_customers_lack_them(tmp_path):
    customers = pd.DataFrame({"customer_id": ["C1", "C2"], "vip": [True, False], "score": [3, 4]})
    transactions = pd.DataFrame(
        {
            "customer_id": ["C1", "C9", "C2"],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"]),
            "amount": [1.0, 2.0, 3.0],
            "units": [1, 2, 3],
        }
    )
    data = frames_to_parquet(tmp_path, customers=customers, transactions=transactions)
    dataset = load_dataset(data, mapping=None)
    assert dataset.customers["customer_id"].tolist() == ["C1", "C2", "C9"]
    assert dataset.customers["vip"].tolist()[:2] == [True, False]
    assert dataset.customers["score"].tolist()[:2] == [3, 4]
    assert dataset.customers[["vip", "score"]].iloc[2].isna().all()
    assert dataset.transactions["units"].tolist() == [1, 2, 3]
    assert dataset.transactions["units"].dtype == "int64"


def test_absent_customers_table_derives_everyone_without_warning(tmp_path):
    dataset = load_dataset(make_data(tmp_path, transactions=TRANSACTIONS))
    assert dataset.customers["customer_id"].tolist() == ["C1", "C2"]
    assert dataset.customers["signup_date"].tolist() == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-02"),
    ]
    assert dataset.derived_customers == 2
    assert dataset.warnings == ()
    assert dataset.files["customers"] == ""
    assert_canonical_dtypes(dataset)


def test_interactions_of_unknown_customers_are_dropped_and_warned(tmp_path):
    interactions = INTERACTIONS + "X7,2024-03-04,web_visit,\nX7,2024-03-05,web_visit,\n"
    data = make_data(
        tmp_path, customers=CUSTOMERS, transactions=TRANSACTIONS, interactions=interactions
    )
    dataset = load_dataset(data)
    assert "X7" not in set(dataset.interactions["customer_id"])
    assert len(dataset.interactions) == 2
    assert any("dropped 2 rows of 1 customer id" in w and "'X7'" in w for w in dataset.warnings)


def test_fingerprint_depends_on_content_not_location(tmp_path):
    first = make_data(tmp_path / "a", customers=CUSTOMERS, transactions=TRANSACTIONS)
    second = shutil.copytree(first, tmp_path / "elsewhere" / "b")
    fingerprint = load_dataset(first).fingerprint
    assert len(fingerprint) == 16
    assert load_dataset(second).fingerprint == fingerprint
    (second / "transactions.csv").write_text(TRANSACTIONS.replace("10.5", "10.6"))
    assert load_dataset(second).fingerprint != fingerprint


def test_summary_is_json_ready_and_counts(tmp_path):
    transactions = TRANSACTIONS + TRANSACTIONS.splitlines()[1] + "\n"
    data = make_data(
        tmp_path, customers=CUSTOMERS, transactions=transactions, interactions=INTERACTIONS
    )
    mapping = {"transactions": {"duplicates": "drop"}}
    summary = json.loads(json.dumps(summarize(load_dataset(data, mapping=mapping))))
    assert summary["tables"]["transactions"]["rows"] == 3
    assert summary["customers"] == {"total": 2, "derived": 0}
    assert summary["transactions"]["first"] == "2024-03-01T10:00:00"
    assert summary["transactions"]["last"] == "2024-03-05T09:15:00"
    assert summary["transactions"]["duplicates_dropped"] == 1
    assert summary["interactions"]["types"] == {"web_visit": 1, "survey": 1}


def test_simulated_world_loads_without_problems(world_dir):
    dataset = load_dataset(world_dir)
    assert len(dataset.transactions) > 0 and len(dataset.interactions) > 0
    assert dataset.derived_customers == 0
    assert_canonical_dtypes(dataset)


# --- files ---------------------------------------------------------------------------------


def test_missing_data_folder_is_an_error(tmp_path):
    (problem,) = problems_of(tmp_path / "nowhere")
    assert "does not exist" in problem.problem and "nowhere" in problem.file


def test_missing_transactions_is_an_error(tmp_path):
    (problem,) = problems_of(make_data(tmp_path, customers=CUSTOMERS))
    assert problem.table == "transactions" and "no transactions table" in problem.problem


def test_two_forms_of_one_table_name_both(tmp_path):
    data = make_data(tmp_path, transactions=TRANSACTIONS)
    load_dataset(data).transactions.to_parquet(data / "transactions.parquet")
    (problem,) = problems_of(data)
    assert "transactions.csv" in problem.problem and "transactions.parquet" in problem.problem


@pytest.mark.parametrize("table", ["customers", "transactions", "interactions"])
def test_zero_byte_file_is_empty(tmp_path, table):
    tables = {"transactions": TRANSACTIONS, table: b""}
    problem = only(problems_of(make_data(tmp_path, **tables)), table, None, "file is empty")
    assert problem.file.endswith(f"{table}.csv")


@pytest.mark.parametrize("table", ["customers", "transactions", "interactions"])
def test_header_only_file_has_no_rows(tmp_path, table):
    header = {"customers": CUSTOMERS, "transactions": TRANSACTIONS, "interactions": INTERACTIONS}
    tables = {"transactions": TRANSACTIONS, table: header[table].splitlines()[0] + "\n"}
    only(problems_of(make_data(tmp_path, **tables)), table, None, "no rows")


def test_parquet_without_rows_is_an_error(tmp_path):
    frame = pd.DataFrame({"customer_id": pd.Series([], dtype="str"), "timestamp": [], "amount": []})
    data = frames_to_parquet(tmp_path, transactions=frame)
    only(problems_of(data), "transactions", None, "no rows")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("transactions.parquet", b"PAR1 this is not really parquet", "cannot read as Parquet"),
        ("transactions.csv", b"customer_id,timestamp,amount\n\x00\x01\x02\xff\xfe", "binary"),
        (
            "transactions.csv",
            "customer_id,timestamp,amount\nC\xe9,2024-03-01,1\n".encode("latin-1"),
            "cannot decode",
        ),
        (
            "transactions.csv",
            b"customer_id,timestamp,amount\nC1,2024-03-01,1,9,9\n",
            "cannot parse",
        ),
    ],
    ids=["bad-parquet", "binary-csv", "latin1-as-utf8", "ragged-csv"],
)
def test_unreadable_files_name_the_file(tmp_path, name, content, words):
    data = make_data(tmp_path, **{name: content})
    problem = only(problems_of(data), "transactions", None, words)
    assert problem.file == str(data / name)


def test_corrupt_part_in_parquet_folder_names_the_part(tmp_path):
    folder = tmp_path / "transactions"
    folder.mkdir()
    frame = pd.DataFrame({"customer_id": ["C1"], "timestamp": ["2024-03-01"], "amount": [1.0]})
    frame.to_parquet(folder / "part-0.parquet")
    (folder / "part-1.parquet").write_bytes(b"garbage")
    problem = only(problems_of(tmp_path), "transactions", None, "cannot read as Parquet")
    assert problem.file.endswith("part-1.parquet")


# --- columns and values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column", "content"),
    [
        ("customers", "customer_id", "id,region\nC1,EU\n"),
        ("transactions", "timestamp", "customer_id,amount\nC1,10\n"),
        ("transactions", "amount", "customer_id,timestamp\nC1,2024-03-01\n"),
        ("interactions", "type", "customer_id,timestamp,kind\nC1,2024-03-01,web_visit\n"),
    ],
)
def test_missing_required_column(tmp_path, table, column, content):
    tables = {"transactions": TRANSACTIONS, table: content}
    problem = only(problems_of(make_data(tmp_path, **tables)), table, column, "required column")
    assert problem.file == str(tmp_path / f"{table}.csv")
    assert "columns in the file" in problem.problem


def test_missing_column_suggests_a_mapping_for_a_near_name(tmp_path):
    content = "Customer_ID,timestamp,amount\nC1,2024-03-01,1\n"
    problem = only(
        problems_of(make_data(tmp_path, transactions=content)),
        "transactions",
        "customer_id",
        "required column",
    )
    assert "columns: {customer_id: Customer_ID}" in problem.problem


def test_unparseable_timestamp_even_one_row_quotes_the_raw_text(tmp_path):
    content = TRANSACTIONS + "C2,03/15/2024 10:00,1\nC2,yesterday,2\nC2,yesterday,3\n"
    problem = only(
        problems_of(make_data(tmp_path, transactions=content)),
        "transactions",
        "timestamp",
        "unparseable timestamp",
    )
    assert problem.rows == 3
    assert problem.samples == ("03/15/2024 10:00", "yesterday")
    assert problem.file == str(tmp_path / "transactions.csv")


def test_unparseable_signup_date_is_an_error(tmp_path):
    customers = "customer_id,signup_date\nC1,2023-01-05\nC2,someday\nC3,\n"
    data = make_data(tmp_path, customers=customers, transactions=TRANSACTIONS)
    problem = only(problems_of(data), "customers", "signup_date", "unparseable date")
    assert problem.samples == ("someday",)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("abc", "not a number"),
        ("12,50", "not a number"),
        ("", "missing values"),
        ("NaN", "missing values"),
        ("inf", "infinite"),
        ("-Infinity", "infinite"),
    ],
)
def test_bad_amounts_are_errors_with_raw_samples(tmp_path, raw, words):
    content = TRANSACTIONS + f'C1,2024-03-09,"{raw}"\n'
    problem = only(
        problems_of(make_data(tmp_path, transactions=content)), "transactions", "amount", words
    )
    assert problem.rows == 1
    assert problem.samples == (raw,)


def test_missing_amount_names_the_row(tmp_path):
    content = TRANSACTIONS + "C1,2024-03-09,\n"
    problem = only(
        problems_of(make_data(tmp_path, transactions=content)),
        "transactions",
        "amount",
        "missing values",
    )
    assert "row 4" in problem.problem


@pytest.mark.parametrize(
    ("table", "content"),
    [
        ("customers", "customer_id,region\nC1,EU\n ,US\n"),
        ("transactions", TRANSACTIONS + ",2024-03-09,1\n"),
        ("interactions", "customer_id,timestamp,type\n,2024-03-01,web_visit\n"),
    ],
)
def test_empty_customer_id_in_any_table(tmp_path, table, content):
    tables = {"transactions": TRANSACTIONS, table: content}
    problem = only(problems_of(make_data(tmp_path, **tables)), table, "customer_id", "missing")
    assert problem.rows == 1


def test_empty_interaction_type_is_an_error(tmp_path):
    interactions = "customer_id,timestamp,type\nC1,2024-03-01,web_visit\nC1,2024-03-02,\n"
    data = make_data(tmp_path, transactions=TRANSACTIONS, interactions=interactions)
    problem = only(problems_of(data), "interactions", "type", "missing values")
    assert problem.rows == 1 and "row 2" in problem.problem


def test_duplicate_customer_ids_are_errors_with_the_ids(tmp_path):
    customers = "customer_id,region\nC1,EU\nC2,US\nC1,US\n007,EU\n007,EU\n"
    data = make_data(tmp_path, customers=customers, transactions=TRANSACTIONS)
    problem = only(problems_of(data), "customers", "customer_id", "duplicate")
    assert problem.rows == 4
    assert set(problem.samples) == {"C1", "007"}


@pytest.mark.parametrize(
    ("table", "column", "content"),
    [
        ("customers", "acquisition_cost", "customer_id,acquisition_cost\nC1,cheap\n"),
        (
            "transactions",
            "quantity",
            "customer_id,timestamp,amount,quantity\nC1,2024-03-01,1,two\n",
        ),
        ("transactions", "margin", "customer_id,timestamp,amount,margin\nC1,2024-03-01,1,3%\n"),
        ("interactions", "value", "customer_id,timestamp,type,value\nC1,2024-03-01,survey,good\n"),
    ],
)
def test_optional_numbers_must_be_numeric(tmp_path, table, column, content):
    tables = {"transactions": TRANSACTIONS, table: content}
    problem = only(problems_of(make_data(tmp_path, **tables)), table, column, "not a number")
    assert len(problem.samples) == 1 and problem.samples[0] in content


def test_non_finite_interaction_value_is_an_error(tmp_path):
    interactions = (
        "customer_id,timestamp,type,value\nC1,2024-03-01,survey,inf\nC1,2024-03-02,survey,\n"
    )
    data = make_data(tmp_path, transactions=TRANSACTIONS, interactions=interactions)
    problem = only(problems_of(data), "interactions", "value", "infinite")
    assert problem.samples == ("inf",)


def test_every_problem_in_every_table_is_reported_at_once(tmp_path):
    data = make_data(
        tmp_path,
        customers="customer_id,acquisition_cost\nC1,x\nC1,2\n",
        transactions="customer_id,timestamp,amount\nC1,never,abc\n",
        interactions="customer_id,timestamp\nC1,2024-03-01\n",
    )
    problems = problems_of(data)
    found = {(problem.table, problem.column) for problem in problems}
    assert found == {
        ("customers", "acquisition_cost"),
        ("customers", "customer_id"),
        ("transactions", "timestamp"),
        ("transactions", "amount"),
        ("interactions", "type"),
    }
    assert all(problem.file.startswith(str(tmp_path)) for problem in problems)


def test_parquet_problems_quote_typed_values(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "timestamp": ["2024-03-01", "2024-13-45"],
            "amount": [np.inf, 1.0],
        }
    )
    problems = problems_of(frames_to_parquet(tmp_path, transactions=frame))
    assert only(problems, "transactions", "timestamp", "unparseable").samples == ("2024-13-45",)
    assert only(problems, "transactions", "amount", "infinite").samples == (np.inf,)
