"""The reader (retain.data.read_tables): compact tables, warnings and problems, whatever the
chunk size, as load_dataset gives them decoded to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retain.data import load_dataset, read_tables, validation
from retain.data.dictionaries import compact_tables, plain_tables
from retain.engines.staging import staged_tables
from retain.errors import DataError
from retain.features import resolve_data
from test_data_contract import CUSTOMERS, INTERACTIONS, ORDERS, TRANSACTIONS, make_data
from test_mapping import HEADERLESS

EVENTS = ("transactions", "interactions")
INPUTS = ("customers", *EVENTS)


def same_as_load_dataset(data, mapping=None, chunk_rows: int = 2):
    """Load ``data`` both ways; assert the same canonical tables, warnings and counts."""
    compact = read_tables(data, mapping, chunk_rows=chunk_rows)
    dataset = load_dataset(data, mapping=mapping)
    expected = resolve_data(dataset).tables
    plain = plain_tables(compact.tables)
    for name in INPUTS:  # the tables read (cost events are derived from them)
        table = expected[name]
        assert plain[name].schema == table.schema, name
        assert plain[name].equals(table), name
    assert compact.warnings == dataset.warnings
    assert compact.fingerprint == dataset.fingerprint
    assert compact.files == dataset.files
    assert (compact.duplicates_dropped, compact.derived_customers) == (
        dataset.duplicates_dropped,
        dataset.derived_customers,
    )
    return compact


def problems_both_ways(data, chunk_rows: int = 2) -> list[str]:
    with pytest.raises(DataError) as expected:
        load_dataset(data)
    with pytest.raises(DataError) as caught:
        read_tables(data, chunk_rows=chunk_rows)
    assert [str(p) for p in caught.value.problems] == [str(p) for p in expected.value.problems]
    return [str(problem) for problem in caught.value.problems]


def test_the_simulated_world_loads_as_load_dataset_loads_it(world_dir):
    same_as_load_dataset(world_dir, chunk_rows=5_000)


def test_duplicates_derived_customers_and_strangers_across_chunks(tmp_path):
    lines = TRANSACTIONS.splitlines()
    transactions = "\n".join(
        [
            lines[0] + ",coupon",
            *(line + ",yes" for line in lines[1:]),
            lines[1] + ",yes",  # an exact duplicate, in another chunk
            lines[1] + ",no",  # differs in an extra column: kept
            "C9,2024-04-02T18:45:00,3,yes",  # only in transactions: derived
            "C9,2024-04-01T23:00:00,4,yes",
            "C2,2024-03-02T11:30:00,-0.0,yes",
            "C2,2024-03-02T11:30:00,0,yes",  # equal to the row before once parsed
        ]
    )
    interactions = INTERACTIONS + "X7,2024-03-04,web_visit,\nX8,2024-03-05,survey,3\n"
    data = make_data(
        tmp_path, customers=CUSTOMERS, transactions=transactions + "\n", interactions=interactions
    )
    compact = same_as_load_dataset(data, {"transactions": {"duplicates": "drop"}})
    assert compact.duplicates_dropped == 2 and compact.derived_customers == 1
    assert len(compact.warnings) == 3
    kept = same_as_load_dataset(data)
    assert kept.duplicates_dropped == 0 and "kept 2 rows identical" in kept.warnings[0]


@pytest.mark.parametrize("policy", ["auto", "keep", "drop"])
def test_every_duplicates_policy_agrees_with_load_dataset_across_chunks(tmp_path, policy):
    lines = ORDERS.splitlines()
    doubled = "\n".join([lines[0], *lines[1:], *lines[1:]]) + "\n"  # 6 repeated orders, 5 identical
    data = make_data(tmp_path, transactions=doubled)
    compact = same_as_load_dataset(data, {"transactions": {"duplicates": policy}}, chunk_rows=3)
    assert compact.duplicates_dropped == {"auto": 6, "keep": 0, "drop": 11}[policy]


def test_a_headerless_file_loads_as_load_dataset_loads_it(tmp_path):
    data = make_data(tmp_path, **{"purchases.txt": HEADERLESS})
    columns = {"customer_id": 1, "timestamp": 2, "quantity": 3, "amount": 4}
    mapping = {"transactions": {"file": "purchases.txt", "separator": "whitespace",
                                "header": False, "columns": columns,
                                "timestamp_format": "%Y%m%d"}}  # fmt: skip
    compact = same_as_load_dataset(data, mapping)
    assert compact.tables["transactions"].num_rows == 6


def test_without_customers_everyone_is_derived(tmp_path):
    compact = same_as_load_dataset(make_data(tmp_path, transactions=TRANSACTIONS))
    assert compact.derived_customers == 2 and compact.warnings == ()


def test_parquet_batches_and_a_folder_of_parts(tmp_path, world):
    transactions = pd.concat([world.transactions, world.transactions.iloc[:50]])
    folder = tmp_path / "parquet"
    folder.mkdir()
    transactions.to_parquet(folder / "transactions.parquet", index=False, row_group_size=7_000)
    world.customers.iloc[10:].to_parquet(folder / "customers.parquet", index=False)
    world.interactions.to_parquet(folder / "interactions.parquet", index=False)
    compact = same_as_load_dataset(folder, chunk_rows=3_000)
    orders = int((world.transactions["amount"].iloc[:50] >= 0).sum())  # returns: kept, counted
    assert 0 < orders < 50
    assert compact.duplicates_dropped == orders and compact.derived_customers > 0
    assert any(f"kept {50 - orders} rows identical" in w for w in compact.warnings)
    parts = tmp_path / "parts"
    (parts / "transactions").mkdir(parents=True)
    for number, start in enumerate(range(0, len(transactions), 20_000)):
        piece = transactions.iloc[start : start + 20_000]
        piece.to_parquet(parts / "transactions" / f"part-{number}.parquet", index=False)
    same_as_load_dataset(parts, chunk_rows=3_000)


@pytest.mark.parametrize("layout", ["file", "parts"])
def test_typed_columns_that_could_read_differently_per_chunk(tmp_path, layout):
    # float ids: 1.0 is "1" only when every id in the column is whole
    transactions = pd.DataFrame(
        {
            "customer_id": [1.0, 2.0, 1.0, 3.5],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "category": [7, 7, None, 8],  # integers with a gap: floats for pandas
        }
    )
    if layout == "file":
        transactions.to_parquet(tmp_path / "transactions.parquet", index=False, row_group_size=2)
    else:
        (tmp_path / "transactions").mkdir()
        for number in range(2):
            part = tmp_path / "transactions" / f"part-{number}.parquet"
            transactions.iloc[2 * number : 2 * number + 2].to_parquet(part, index=False)
    compact = same_as_load_dataset(tmp_path, chunk_rows=2)
    plain = plain_tables(compact.tables)["transactions"]
    assert plain.column("customer_id").to_pylist() == ["1.0", "2.0", "1.0", "3.5"]
    assert plain.column("category").to_pylist() == ["7.0", "7.0", None, "8.0"]


def test_a_mapping_renames_parses_and_localises(tmp_path):
    transactions = (
        "ID;when;dollars\nA1;01/03/2024 10:00;5\nA2;02/03/2024 11:00;6\nA1;03/03/2024;7\n"
    )
    data = make_data(tmp_path, transactions=transactions)
    mapping = {
        "transactions": {
            "separator": ";",
            "columns": {"customer_id": "ID", "timestamp": "when", "amount": "dollars"},
            "timestamp_format": "%d/%m/%Y %H:%M",
            "timezone": "Europe/Berlin",
        }
    }
    with pytest.raises(DataError):  # the last row lacks a time: a problem both ways
        load_dataset(data, mapping=mapping)
    (tmp_path / "transactions.csv").write_text(
        transactions.replace(";03/03/2024;", ";03/03/2024 09:00;")
    )
    same_as_load_dataset(data, mapping, chunk_rows=1)


def test_problems_are_reported_as_load_dataset_reports_them(tmp_path):
    bad = TRANSACTIONS + "C1,yesterday,5\nC2,2024-03-09,abc\nC2,2024-03-09,\n"
    problems = problems_both_ways(make_data(tmp_path / "a", transactions=bad))
    assert any("'yesterday'" in problem for problem in problems)
    duplicate_ids = CUSTOMERS + "C1,2023-03-01,EU\n"
    problems = problems_both_ways(
        make_data(tmp_path / "b", customers=duplicate_ids, transactions=TRANSACTIONS)
    )
    assert any("duplicate ids" in problem for problem in problems)
    problems_both_ways(make_data(tmp_path / "c", customers=CUSTOMERS))  # no transactions
    problems_both_ways(tmp_path / "nowhere")


SPREAD = (
    "customer_id,timestamp,amount\n"
    "C1,2024-03-01,10\n"
    "C1,yesterday,5\n"  # row 2: unparseable timestamp
    "C2,2024-03-02,\n"  # row 3: missing amount
    "C2,2024-03-03,inf\n"  # row 4: infinite
    "C2,soon,abc\n"  # row 5: unparseable timestamp, not a number
    "C3,2024-03-04,\n"  # row 6: missing amount
    ",2024-03-05,1\n"  # row 7: missing customer id
    "C3,2300-01-01,2\n"  # row 8: outside the plausible window
)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_problems_spread_over_chunks_are_reported_once_each_as_for_the_whole_table(
    tmp_path, chunk_rows
):
    data = make_data(tmp_path, transactions=SPREAD)
    with pytest.raises(DataError) as caught:
        read_tables(data, chunk_rows=chunk_rows)
    found = [
        (problem.column, problem.problem.split(",")[0], problem.rows, problem.samples)
        for problem in caught.value.problems
    ]
    assert found == [
        ("customer_id", "missing values (row 7)", 1, ("",)),
        ("timestamp", "unparseable timestamp", 2, ("yesterday", "soon")),
        ("timestamp", "dated outside 1900-01-01 to " + found[2][1].split(" to ")[1], 1,
         ("2300-01-01",)),
        ("amount", "not a number", 1, ("abc",)),
        ("amount", "missing values (rows 3", 2, ("",)),
        ("amount", "infinite values", 1, ("inf",)),
    ]  # fmt: skip
    assert "missing values (rows 3, 6)" in caught.value.problems[4].problem


def test_row_numbers_and_samples_over_chunks_are_the_first_of_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "SAMPLED_ROWS", 4)  # samples from the first 4 bad rows
    amounts = ["a", "", "a", "b", "", "a", "", "c", "", "d", "", "", "e"]
    lines = [f"C1,2024-03-0{1 + number % 9},{amount}" for number, amount in enumerate(amounts)]
    data = make_data(tmp_path, transactions="customer_id,timestamp,amount\n" + "\n".join(lines))
    for chunk_rows in (1, 2, 5, 100):
        with pytest.raises(DataError) as caught:
            read_tables(data, chunk_rows=chunk_rows)
        junk, missing = caught.value.problems
        assert (junk.rows, junk.samples) == (7, ("a", "b"))  # c is the 5th bad row
        assert (missing.rows, missing.samples) == (6, ("",))
        assert "(rows 2, 5, 7, 9, 11, ...)" in missing.problem


def test_staging_codes_the_reader_tables_as_their_plain_form(world_dir):
    tables = read_tables(world_dir, chunk_rows=5_000).tables
    from_reader = staged_tables(tables)
    from_plain = staged_tables(plain_tables(tables))
    assert from_reader["_keys"].equals(from_plain["_keys"])
    for name in EVENTS + ("customers",):
        for column in from_plain[name].column_names:
            if column.startswith("_"):
                assert from_reader[name].column(column).equals(from_plain[name].column(column))


def test_compact_codes_ids_on_every_id_and_text_on_its_values(world_dir):
    tables = read_tables(world_dir, chunk_rows=5_000).tables
    ids = tables["customers"].column("customer_id").combine_chunks()
    keys = ids.dictionary
    assert keys.to_pylist() == sorted(ids.to_pylist())  # every id, sorted
    for name in EVENTS:
        for chunk in tables[name].column("customer_id").chunks:
            assert chunk.dictionary.equals(keys)
        for field in tables[name].schema:
            if field.name != "customer_id" and pa.types.is_dictionary(field.type):
                column = tables[name].column(field.name)
                values = column.chunk(0).dictionary.to_pylist()
                assert values == sorted(values) == sorted(pc.unique(column.cast(pa.string()))
                                                          .drop_null().to_pylist())  # fmt: skip


def test_compact_tables_of_plain_tables_decode_to_them(world):
    frames = {
        "customers": world.customers,
        "transactions": world.transactions,
        "interactions": world.interactions,
    }
    plain = resolve_data(frames).tables
    decoded = plain_tables(compact_tables(plain))
    for name, table in plain.items():
        assert decoded[name].equals(table), name
    keys = compact_tables(plain)["transactions"].column("customer_id").chunk(0).dictionary
    ids = np.unique(
        np.concatenate([frame["customer_id"].to_numpy(str) for frame in frames.values()])
    )
    assert keys.to_pylist() == ids.tolist()
