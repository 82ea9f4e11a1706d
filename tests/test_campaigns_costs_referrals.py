"""The optional logs ``campaigns`` and ``costs`` and the optional ``customers.referred_by``:
every rule on small hand-written tables, read by the real reader, through ``retain validate``
and into a feature build."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.data import TABLES, canonical_schema, folder_fingerprint, load_dataset, read_tables
from retain.data.dictionaries import plain_tables
from retain.errors import ConfigError, DataError
from test_data_contract import make_data, only, problems_of

runner = CliRunner()

CUSTOMERS = (
    "customer_id,signup_date,referred_by\n"
    "C1,2023-01-05,\n"
    "C2,2023-02-10,C1\n"
    "C3,2023-02-10,C2\n"  # the same day as the referrer: allowed
    "C4,,C1\n"  # no signup_date: joined at the first transaction
)
TRANSACTIONS = (
    "customer_id,timestamp,amount\n"
    "C1,2024-03-01T10:00:00,10.5\n"
    "C2,2024-03-02T11:30:00,20\n"
    "C4,2024-03-05T09:15:00,7\n"
    "C5,2024-01-01T09:00:00,3\n"  # a buyer missing from customers
)
CAMPAIGNS = (
    "customer_id,timestamp,campaign_id,action,group,cost\n"
    "C1,2024-04-01,spring,discount,treatment,2.5\n"
    "C2,2024-04-01,spring,,control,\n"  # a control shared by the actions: no action, no cost
    "C4,2024-04-01,spring,service_call,treatment,0\n"
    "C1,2024-06-01,summer,discount,control,0\n"  # control in another campaign: fine
)
COSTS = (
    "customer_id,timestamp,kind,amount\n"
    "C1,2024-03-01,order,1.25\n"
    "C2,2024-03-02,support_ticket,4\n"
    "C1,2024-03-03,fraud_check,0\n"  # open vocabulary, and zero is a cost
)


def full_folder(root: Path, **changes: str) -> Path:
    """A folder with every table of the contract; ``changes`` replace some of them."""
    tables = {
        "customers": CUSTOMERS,
        "transactions": TRANSACTIONS,
        "campaigns": CAMPAIGNS,
        "costs": COSTS,
        **changes,
    }
    return make_data(root, **{name: text for name, text in tables.items() if text is not None})


def assert_canonical(frame: pd.DataFrame, name: str) -> None:
    spec = TABLES[name]
    assert list(frame.columns[: len(spec.names)]) == list(spec.names)
    for column in spec.columns:
        assert frame[column.name].dtype == column.dtype, (name, column.name)
    canonical_schema(name).validate(frame)


# --- good path -----------------------------------------------------------------------------


def test_campaigns_costs_and_referrals_load_with_canonical_dtypes(tmp_path):
    dataset = load_dataset(full_folder(tmp_path))
    for name in ("customers", "campaigns", "costs"):
        assert_canonical(getattr(dataset, name), name)
    campaigns = dataset.campaigns
    assert campaigns["campaign_id"].tolist() == ["spring", "spring", "spring", "summer"]
    assert campaigns["group"].tolist() == ["treatment", "control", "treatment", "control"]
    assert campaigns["action"].isna().tolist() == [False, True, False, False]
    assert campaigns["cost"].fillna(-1).tolist() == [2.5, -1, 0.0, 0.0]
    assert dataset.costs["kind"].tolist() == ["order", "support_ticket", "fraud_check"]
    assert dataset.costs["amount"].tolist() == [1.25, 4.0, 0.0]
    referred = dataset.customers.set_index("customer_id")["referred_by"]
    assert referred.fillna("").to_dict() == {"C1": "", "C2": "C1", "C3": "C2", "C4": "C1", "C5": ""}
    assert dataset.files["campaigns"] == str(tmp_path / "campaigns.csv")


def test_without_the_logs_the_dataset_has_them_empty_and_the_summary_as_before(tmp_path):
    from retain.data import summarize

    dataset = load_dataset(make_data(tmp_path, transactions=TRANSACTIONS))
    for name in ("campaigns", "costs"):
        frame = getattr(dataset, name)
        assert len(frame) == 0
        assert_canonical(frame, name)
        assert dataset.files[name] == ""
    assert dataset.customers["referred_by"].isna().all()
    summary = summarize(dataset)
    assert list(summary["tables"]) == ["customers", "transactions", "interactions"]
    assert "campaigns" not in summary and "costs" not in summary
    assert "referred" not in summary["customers"]


def test_the_reader_keeps_the_logs_apart_from_the_feature_sources(tmp_path):
    read = read_tables(full_folder(tmp_path))
    assert list(read.tables) == ["customers", "transactions", "interactions"]
    assert list(read.logs) == ["campaigns", "costs"]
    keys = read.tables["customers"].column("customer_id").chunk(0).dictionary
    for table in read.logs.values():  # the one key coding of every table
        for chunk in table.column("customer_id").chunks:
            assert chunk.dictionary.equals(keys)
    assert pa.types.is_dictionary(read.logs["campaigns"].schema.field("group").type)
    plain = plain_tables(read.logs)
    dataset = load_dataset(tmp_path)
    for name in ("campaigns", "costs"):
        pd.testing.assert_frame_equal(plain[name].to_pandas(), getattr(dataset, name))


def test_summary_describes_campaigns_costs_and_referrals(tmp_path):
    from retain.data import summarize

    summary = summarize(load_dataset(full_folder(tmp_path)))
    assert summary["tables"]["campaigns"]["rows"] == 4
    assert summary["tables"]["costs"]["rows"] == 3
    assert summary["customers"]["referred"] == 3
    assert summary["campaigns"] == {
        "campaigns": 2,
        "first": "2024-04-01T00:00:00",
        "last": "2024-06-01T00:00:00",
        "groups": {"treatment": 2, "control": 2},
        "actions": {"discount": 1, "service_call": 1},
        "cost": 2.5,
    }
    assert summary["costs"]["total"] == 5.25
    assert summary["costs"]["kinds"] == {
        "support_ticket": {"rows": 1, "amount": 4.0},
        "order": {"rows": 1, "amount": 1.25},
        "fraud_check": {"rows": 1, "amount": 0.0},
    }


def test_the_fingerprint_covers_the_logs(tmp_path):
    without = load_dataset(full_folder(tmp_path / "a", campaigns=None, costs=None)).fingerprint
    with_logs = load_dataset(full_folder(tmp_path / "b")).fingerprint
    changed = full_folder(tmp_path / "c", costs=COSTS.replace("1.25", "1.5"))
    assert len({without, with_logs, load_dataset(changed).fingerprint}) == 3
    assert folder_fingerprint(tmp_path / "b").fingerprint == with_logs
    assert folder_fingerprint(tmp_path / "b").files["costs"] == str(tmp_path / "b" / "costs.csv")


def test_events_of_unknown_customers_are_dropped_with_a_warning(tmp_path):
    campaigns = CAMPAIGNS + "X9,2024-04-01,spring,discount,treatment,2\n"
    costs = COSTS + "X9,2024-03-01,order,2.5\nX8,2024-03-01,order,1\n"
    dataset = load_dataset(full_folder(tmp_path, campaigns=campaigns, costs=costs))
    assert "X9" not in set(dataset.campaigns["customer_id"]) | set(dataset.costs["customer_id"])
    assert len(dataset.campaigns) == 4 and len(dataset.costs) == 3
    campaign_note, cost_note = dataset.warnings[-2:]
    assert (
        campaign_note.startswith("campaigns (")
        and "dropped 1 row of 1 customer id" in campaign_note
    )
    assert "dropped 2 rows (amount 3.50) of 2 customer ids" in cost_note and "'X8'" in cost_note


def test_typed_parquet_logs_are_normalised(tmp_path):
    stamps = pd.to_datetime(["2024-04-01 10:00"] * 2).tz_localize("Europe/Berlin")
    campaigns = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "timestamp": stamps,
            "campaign_id": [2024001, 2024001],  # a number in the file, an id after loading
            "action": ["discount", None],
            "group": ["treatment", "control"],
            "cost": [2, 0],
        }
    )
    transactions = pd.DataFrame(
        {"customer_id": [1, 2], "timestamp": pd.to_datetime(["2024-03-01"] * 2), "amount": [5, 6]}
    )
    for name, frame in (("campaigns", campaigns), ("transactions", transactions)):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    dataset = load_dataset(tmp_path)
    assert_canonical(dataset.campaigns, "campaigns")
    assert dataset.campaigns["campaign_id"].tolist() == ["2024001", "2024001"]
    assert dataset.campaigns["customer_id"].tolist() == ["1", "2"]
    assert dataset.campaigns["timestamp"].iloc[0] == pd.Timestamp("2024-04-01 08:00")


def test_mapping_names_the_logs_files_columns_and_formats(tmp_path):
    make_data(
        tmp_path,
        transactions=TRANSACTIONS,
        **{
            "contacts.txt": "cust;day;wave;offer;arm;price\n"
            "C1;01/04/2024;spring;discount;treatment;2.5\nC2;01/04/2024;spring;;control;\n",
            "fees.csv": "who,when,what,eur\nC1,2024-03-01,shipping,3.9\n",
        },
    )
    mapping = {
        "campaigns": {
            "file": "contacts.txt",
            "separator": ";",
            "columns": {
                "customer_id": "cust",
                "timestamp": "day",
                "campaign_id": "wave",
                "action": "offer",
                "group": "arm",
                "cost": "price",
            },
            "timestamp_format": "%d/%m/%Y",
        },
        "costs": {
            "file": "fees.csv",
            "columns": {"customer_id": "who", "timestamp": "when", "kind": "what", "amount": "eur"},
        },
    }
    dataset = load_dataset(tmp_path, mapping=mapping)
    assert dataset.campaigns["timestamp"].tolist() == [pd.Timestamp("2024-04-01")] * 2
    assert dataset.campaigns["group"].tolist() == ["treatment", "control"]
    assert dataset.costs[["kind", "amount"]].values.tolist() == [["shipping", 3.9]]
    with pytest.raises(ConfigError, match=r"campaigns.columns.grup: unknown column 'grup' \(did"):
        load_dataset(tmp_path, mapping={"campaigns": {"columns": {"grup": "arm"}}})
    with pytest.raises(ConfigError, match="costs.duplicates: unknown key"):
        load_dataset(tmp_path, mapping={"costs": {"duplicates": "drop"}})


# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "text", "column", "words", "rows", "samples"),
    [
        (
            "campaigns",
            CAMPAIGNS + "C3,2024-04-01,spring,discount,Treatment,1\n",
            "group",
            "not one of treatment, control",
            1,
            ("Treatment",),
        ),
        (
            "campaigns",
            CAMPAIGNS + "C1,2024-04-02,spring,discount,control,0\n",
            "group",
            "1 customer in both the treatment and the control group of one campaign (rows 1, 5)",
            2,
            ("C1 in spring",),
        ),
        (
            "campaigns",
            CAMPAIGNS + "C3,2024-04-01,spring,discount,treatment,-2\n",
            "cost",
            "negative: a cost is 0 or more",
            1,
            ("-2",),
        ),
        (
            "campaigns",
            CAMPAIGNS + "C3,2024-04-01,spring,,treatment,1\n",
            "action",
            "missing in treatment rows (only control rows may leave the action empty) (row 5)",
            1,
            ("",),
        ),
        (
            "campaigns",
            CAMPAIGNS + "C3,2024-04-01,,discount,treatment,1\n",
            "campaign_id",
            "missing values (row 5)",
            1,
            ("",),
        ),
        (
            "campaigns",
            CAMPAIGNS + "C3,2024-04-01,spring,discount,,1\n",
            "group",
            "missing values (row 5)",
            1,
            ("",),
        ),
        ("costs", COSTS + "C1,2024-03-04,refund,-5\n", "amount", "negative", 1, ("-5",)),
        ("costs", COSTS + "C1,2024-03-04,,5\n", "kind", "missing values (row 4)", 1, ("",)),
        ("costs", COSTS + "C1,2024-03-04,order,\n", "amount", "missing values", 1, ("",)),
        ("costs", COSTS + "C1,soon,order,1\n", "timestamp", "unparseable timestamp", 1, ("soon",)),
    ],
    ids=[
        "group-vocabulary",
        "both-groups",
        "negative-cost",
        "treatment-without-action",
        "missing-campaign",
        "missing-group",
        "negative-cost-amount",
        "missing-kind",
        "missing-amount",
        "bad-timestamp",
    ],
)
def test_each_rule_of_the_logs_is_an_error(tmp_path, table, text, column, words, rows, samples):
    problem = only(problems_of(full_folder(tmp_path, **{table: text})), table, column, words)
    assert (problem.rows, problem.samples) == (rows, samples)
    assert problem.file == str(tmp_path / f"{table}.csv")


@pytest.mark.parametrize(
    ("table", "text", "column"),
    [
        ("campaigns", "customer_id,timestamp,campaign_id,action,cost\nC1,2024-04-01,s,d,1\n",
         "group"),
        ("campaigns", "customer_id,timestamp,campaign_id,group\nC1,2024-04-01,s,control\n",
         "action"),
        ("costs", "customer_id,timestamp,amount\nC1,2024-03-01,1\n", "kind"),
        ("costs", "customer_id,timestamp,kind\nC1,2024-03-01,order\n", "amount"),
    ],
)  # fmt: skip
def test_required_columns_of_the_logs(tmp_path, table, text, column):
    problems = problems_of(full_folder(tmp_path, **{table: text}))
    assert len(problems) == 1
    only(problems, table, column, "required column is missing")


def test_an_empty_log_file_is_an_error(tmp_path):
    data = full_folder(tmp_path, costs="customer_id,timestamp,kind,amount\n")
    only(problems_of(data), "costs", None, "no rows (only a header)")


@pytest.mark.parametrize(
    ("customers", "words", "rows", "samples"),
    [
        (CUSTOMERS + "C6,2023-05-01,C99\n", "names no known customer", 1, ("C99",)),
        (CUSTOMERS + "C6,2023-05-01,C6\n", "named as their own referrer", 1, ("C6",)),
        (  # C6 never bought: signed up (and referred) before C2 signed up
            CUSTOMERS + "C6,2022-12-31,C2\n",
            "the referrer became a customer (from the earlier of signup_date and first "
            "transaction) after the customer referred had signed up and bought",
            1,
            ("C2 (from 2023-02-10) referred C6 (by 2022-12-31)",),
        ),
        (  # C5 is known from transactions only: a customer from 2024-01-01
            CUSTOMERS + "C6,2023-06-01,C5\n",
            "after the customer referred had signed up and bought",
            1,
            ("C5 (from 2024-01-01) referred C6 (by 2023-06-01)",),
        ),
        (  # without signup_date, C4 is a customer from its first transaction, 2024-03-05
            CUSTOMERS + "C6,2024-03-04,C4\n",
            "after the customer referred had signed up and bought",
            1,
            ("C4 (from 2024-03-05) referred C6 (by 2024-03-04)",),
        ),
        (
            "customer_id,signup_date,referred_by\n"
            "A,2023-01-01,C\nB,2023-01-01,A\nC,2023-01-01,B\nD,2023-01-01,A\n"
            "E,2023-01-01,F\nF,2023-01-01,E\n",
            "referrals go round in a cycle: 'A' referred by 'C', 'C' by 'B', 'B' by 'A' "
            "(5 customers on cycles)",
            5,
            ("A", "B", "C", "E", "F"),
        ),
    ],
    ids=["unknown", "self", "later", "later-than-a-buyer", "first-transaction", "cycle"],
)
def test_referral_rules(tmp_path, customers, words, rows, samples):
    problem = only(problems_of(full_folder(tmp_path, customers=customers)), "customers",
                   "referred_by", words)  # fmt: skip
    assert (problem.rows, problem.samples) == (rows, samples)


def test_a_referral_may_come_with_the_first_purchase_after_an_early_signup(tmp_path):
    """C6 opened an account before C2 signed up, and first bought after: C2 may have brought
    that first order (a referral is credited at signup or at the first purchase)."""
    customers = CUSTOMERS + "C6,2022-06-01,C2\n"
    transactions = TRANSACTIONS + "C6,2023-02-10T08:00:00,4\n"  # the day C2 signed up
    dataset = load_dataset(full_folder(tmp_path, customers=customers, transactions=transactions))
    assert dataset.customers.set_index("customer_id").loc["C6", "referred_by"] == "C2"
    later = transactions.replace("C6,2023-02-10T08", "C6,2023-02-09T23")  # a day too early
    data = full_folder(tmp_path / "early", customers=customers, transactions=later)
    problem = only(problems_of(data), "customers", "referred_by", "after the customer referred")
    assert problem.samples == ("C2 (from 2023-02-10) referred C6 (by 2023-02-09)",)


def test_referrals_are_checked_with_the_problems_of_other_tables(tmp_path):
    data = full_folder(
        tmp_path,
        customers=CUSTOMERS + "C6,2023-05-01,C99\n",
        campaigns=CAMPAIGNS + "C3,2024-04-01,spring,x,maybe,1\n",
    )
    found = [(problem.table, problem.column) for problem in problems_of(data)]
    assert found == [("customers", "referred_by"), ("campaigns", "group")]


def test_a_long_referral_cycle_is_named_in_part(tmp_path):
    size = 200_000  # a cycle through everyone: found by doubling, not by walking each path
    ids = np.char.add("C", np.arange(size).astype(str))
    customers = pd.DataFrame(
        {"customer_id": ids, "signup_date": pd.Timestamp("2023-01-01"),
         "referred_by": np.roll(ids, -1)}
    )  # fmt: skip
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    make_data(tmp_path, transactions="customer_id,timestamp,amount\nC0,2024-01-01,1\n")
    problem = only(problems_of(tmp_path), "customers", "referred_by", "go round in a cycle")
    assert problem.rows == size
    assert "'C0' referred by 'C1', 'C1' by 'C2'" in problem.problem
    assert "'C6' by ..." in problem.problem and "(200,000 customers on cycles)" in problem.problem


# --- chunks --------------------------------------------------------------------------------


def test_rules_across_rows_see_every_chunk(tmp_path):
    """The two rows of a customer in both groups, far apart, and other problems between them:
    the same problems whatever the chunk size, as load_dataset reports them."""
    rows = ["customer_id,timestamp,campaign_id,action,group,cost"]
    rows += [f"C1,2024-04-0{day},spring,discount,treatment,1" for day in range(1, 8)]
    rows += ["C2,2024-04-01,spring,discount,treatment,-1", "C2,2024-04-02,autumn,,treatment,1"]
    rows += ["C4,2024-04-01,spring,,control,0", "C2,2024-04-02,spring,,control,0"]
    data = full_folder(tmp_path, campaigns="\n".join(rows) + "\n")
    with pytest.raises(DataError) as whole:
        load_dataset(data)
    expected = [str(problem) for problem in whole.value.problems]
    assert len(expected) == 3 and "both the treatment and the control" in expected[1]
    assert "(rows 8, 11)" in expected[1] and "'C2 in spring'" in expected[1]
    for chunk_rows in (1, 2, 3, 5, 100):
        with pytest.raises(DataError) as caught:
            read_tables(data, chunk_rows=chunk_rows)
        assert [str(problem) for problem in caught.value.problems] == expected, chunk_rows


@pytest.mark.parametrize("chunk_rows", [1, 3])
def test_good_logs_read_in_chunks_as_a_whole(tmp_path, chunk_rows):
    data = full_folder(tmp_path)
    whole = read_tables(data)
    chunked = read_tables(data, chunk_rows=chunk_rows)
    for name in ("campaigns", "costs"):
        assert plain_tables(chunked.logs)[name].equals(plain_tables(whole.logs)[name]), name


# --- the command line ----------------------------------------------------------------------


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_validate_summarises_the_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(full_folder(tmp_path))
    result = runner.invoke(app, ["validate", "--data", "."])
    assert result.exit_code == 0, result.output
    for words in ("Campaigns", "treated with discount", "Costs", "support_ticket", "5.25",
                  "referred by a customer"):  # fmt: skip
        assert words in result.stdout, words


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"campaigns": CAMPAIGNS + "C2,2024-04-01,spring,discount,treatment,1\n"}, "both the"),
        ({"campaigns": CAMPAIGNS + "C3,2024-04-01,spring,x,holdout,1\n"}, "not one of"),
        ({"costs": COSTS + "C1,2024-03-04,credit,-5\n"}, "negative"),
        ({"customers": CUSTOMERS + "C6,2023-05-01,C99\n"}, "names no known customer"),
        ({"customers": CUSTOMERS + "C6,2023-05-01,C6\n"}, "own referrer"),
        ({"customers": CUSTOMERS.replace("C2,2023-02-10,C1", "C2,2023-02-10,C3")}, "a cycle"),
    ],
    ids=["both-groups", "group", "negative-cost", "unknown-referrer", "self", "cycle"],
)
def test_validate_exits_2_on_each_error_and_writes_nothing(tmp_path, monkeypatch, changes, words):
    data = full_folder(tmp_path / "data", **changes)
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    result = runner.invoke(app, ["validate", "--data", "data"])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert f"{data.name}/{next(iter(changes))}.csv" in "".join(result.output.split())
    assert listing(tmp_path) == before


def test_features_build_reads_the_logs_and_only_costs_change_features(world, world_dir, tmp_path):
    """The logs and referrals are read and checked, and change no feature but the cost to
    serve (the costs log)."""
    data = tmp_path / "data"
    shutil.copytree(world_dir, data)
    customers = world.customers.sort_values(["signup_date", "customer_id"], kind="stable")
    referrer = customers["customer_id"].shift(1).where(np.arange(len(customers)) % 10 == 5)
    customers.assign(referred_by=referrer).sort_index().to_parquet(
        data / "customers.parquet", index=False
    )
    enrolled = world.customers["customer_id"].iloc[::7].reset_index(drop=True)
    treated = np.arange(len(enrolled)) % 4 != 0
    pd.DataFrame(
        {
            "customer_id": enrolled,
            "timestamp": pd.Timestamp("2024-09-01"),
            "campaign_id": "autumn",
            "action": np.where(treated, "discount", None),
            "group": np.where(treated, "treatment", "control"),
            "cost": np.where(treated, 2.0, 0.0),
        }
    ).to_parquet(data / "campaigns.parquet", index=False)
    orders = world.transactions[world.transactions["amount"] > 0]
    pd.DataFrame(
        {
            "customer_id": orders["customer_id"],
            "timestamp": orders["timestamp"],
            "kind": "order",
            "amount": 1.5,
        }
    ).to_parquet(data / "costs.parquet", index=False)
    validated = runner.invoke(app, ["validate", "--data", str(data)])
    assert validated.exit_code == 0, validated.output
    assert "Campaigns" in validated.stdout and "referred by a customer" in validated.stdout
    snapshots = []
    for folder in (world_dir, data):
        store = tmp_path / f"store-{folder.name}"
        built = runner.invoke(
            app,
            ["features", "build", "--as-of", "2025-01-01", "--data", str(folder),
             "--store", str(store), "--workspace", str(tmp_path)],
        )  # fmt: skip
        assert built.exit_code == 0, built.output
        (snapshot,) = store.glob("snapshots/as_of=*/*.parquet")
        snapshots.append(pd.read_parquet(snapshot))
    # the costs log feeds the cost-to-serve features (1.5 per order) and the net profit to date
    # less them (payback may come later or never); nothing else changes
    costs = ["cost_to_serve_90d", "cost_to_serve_365d", "cost_to_serve_total"]
    profit = ["net_profit_to_date", "payback_months"]
    bare, logged = snapshots
    assert (bare[costs] == 0.0).all().all()
    assert (logged["cost_to_serve_total"] == 1.5 * logged["frequency"]).all()
    np.testing.assert_allclose(
        logged["net_profit_to_date"],
        bare["net_profit_to_date"] - logged["cost_to_serve_total"],
        atol=1e-6,
    )
    later = logged["payback_months"].fillna(np.inf) >= bare["payback_months"].fillna(np.inf)
    assert later.all()
    changed = costs + profit
    pd.testing.assert_frame_equal(bare.drop(columns=changed), logged.drop(columns=changed))
