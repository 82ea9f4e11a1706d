"""The engine protocol: one place names engines, and the rules, ranking and tallies give the
same answers (hand-computed) on every engine (the ``engine`` fixture of conftest.py)."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.engines import ENGINES, get_engine
from retain.engines.duckdb import DuckDBEngine
from retain.engines.rules import RANKING_INPUTS
from retain.errors import ConfigError, RetainError
from retain.features import resolve_data
from retain.serving import score
from retain.serving.contract import LIST_COLUMNS
from retain.serving.experiment import hold_out
from retain.serving.selection import rank_and_select
from retain.workspace import ENGINES as CONFIG_ENGINES

SRC = Path(__file__).resolve().parents[1] / "src" / "retain"
AS_OF = date(2026, 1, 1)
FLOATS = ["churn_probability", "clv", "clv_if_retained", "value_at_risk", "action_cost",
          "save_rate", "expected_incremental_margin", "expected_churn_effect",
          "expected_net_gain", "recency_days", "frequency", "monetary_total",
          "influence_value"]  # fmt: skip


# --------------------------------------------------------------------------- one place


def test_get_engine_is_the_one_place_engines_are_named():
    assert tuple(ENGINES) == CONFIG_ENGINES  # what retain.yaml may name, and nothing else
    assert isinstance(get_engine(), DuckDBEngine) and get_engine("duckdb").in_process
    with pytest.raises(ConfigError, match="unknown engine 'flink'; known: duckdb, spark"):
        get_engine("flink")
    with pytest.raises(ConfigError, match="--spark-config is for --engine spark"):
        get_engine("duckdb", config_file="cluster.yaml")


def test_no_module_outside_the_engines_imports_a_backend_or_names_an_engine():
    """The core calls the protocol: it imports neither pyspark nor duckdb, and never compares
    anything with an engine's name."""
    offences = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "engines":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names] + [getattr(node, "module", "")]
                if any((name or "").split(".")[0] in ("pyspark", "duckdb") for name in names):
                    offences.append(f"{relative}:{node.lineno} imports a backend")
            if isinstance(node, ast.Compare):
                constants = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
                if set(constants) & {*ENGINES, "pyspark"}:
                    offences.append(f"{relative}:{node.lineno} compares with an engine name")
    assert offences == []


def test_unknown_engines_are_refused_with_the_known_ones_named():
    result = CliRunner().invoke(app, ["score", "--as-of", "2026-01-01", "--engine", "flink"])
    assert result.exit_code == 2
    assert "duckdb" in result.output and "spark" in result.output
    with pytest.raises(RetainError, match="unknown engine 'flink'"):
        score(AS_OF, engine="flink")


# --------------------------------------------------------------------------- lists


def _scored(seed: int, rows: int = 60) -> pd.DataFrame:
    """Scored rows with tied gains, tied values at risk, zero-cost and losing actions."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: [""] * rows for name in LIST_COLUMNS if name not in
                          ("rank", "selected", "group")})  # fmt: skip
    frame["customer_id"] = [f"c{i:03d}" for i in rng.permutation(rows)]
    frame["as_of"] = AS_OF
    for name in FLOATS:
        frame[name] = 0.0
    frame["cluster"] = 0
    frame["sleeping_dog"] = False
    frame["recommended_action"] = rng.choice(["call", "email"], rows)
    frame["clv"] = rng.choice([50.0, 100.0], rows)
    frame["value_at_risk"] = rng.choice([10.0, 20.0, 30.0], rows)
    frame["action_cost"] = rng.choice([0.0, 1.0, 2.5, 4.0], rows)
    frame["expected_net_gain"] = rng.choice([-1.0, 0.0, 2.0, 3.0, 5.5], rows)
    return frame


@pytest.mark.parametrize(
    ("capacity", "budget"), [(None, None), (7, None), (None, 12.5), (7, 12.5), (0, None)]
)
def test_every_engine_selects_ranks_and_tallies_with_the_one_rule(engine, capacity, budget):
    """The engine collects the ranking inputs, the driver selects and ranks them (one numpy
    function), the engine puts its rows in that order; the tallies are exact sums."""
    frame = _scored(seed=capacity or 1)
    rows = engine.from_pandas(frame)
    narrow = engine.collect(rows, RANKING_INPUTS)
    assert narrow.columns.tolist() == list(RANKING_INPUTS)
    ids = narrow["customer_id"].to_numpy(dtype=object)
    order, selection = rank_and_select(
        ids, narrow["expected_net_gain"].to_numpy(), narrow["value_at_risk"].to_numpy(),
        narrow["action_cost"].to_numpy(), capacity=capacity, budget=budget,
    )  # fmt: skip
    actions = narrow["recommended_action"].to_numpy(dtype=object)
    groups = hold_out(ids, actions, selection.chosen, 0.25, 7, AS_OF)
    listing = engine.rank(rows, ids, order, selection.chosen, list(LIST_COLUMNS), groups)
    written = pd.DataFrame(engine.collect(listing, list(LIST_COLUMNS)))
    written = written.sort_values("rank", ignore_index=True)
    expected = frame.set_index("customer_id").loc[ids[order]].reset_index()
    assert written["customer_id"].tolist() == expected["customer_id"].tolist()
    assert written["rank"].tolist() == list(range(1, len(frame) + 1))
    assert written["selected"].tolist() == selection.chosen[order].tolist()
    assert [g if isinstance(g, str) else None for g in written["group"]] == groups[order].tolist()
    assert selection.optimal
    chosen = written[written["selected"]]
    held_out = chosen["group"] == "control"
    tallies = engine.tallies(listing)
    assert tallies["counts"] == {
        "customers_active": 60, "scored": 60, "selected": len(chosen),
        "control": int(held_out.sum()), "contacted": int((~held_out).sum()),
        "by_action": {
            name: int(count) for name, count in sorted(
                chosen["recommended_action"].value_counts().items(), key=lambda i: (-i[1], i[0])
            )
        },
    }  # fmt: skip
    assert tallies["totals"] == {
        "value_at_risk": frame["value_at_risk"].sum(),
        "clv": frame["clv"].sum(),
        "expected_net_gain": frame["expected_net_gain"].clip(lower=0).sum(),
        "selected_value_at_risk": chosen["value_at_risk"].sum(),
        "selected_expected_net_gain": chosen["expected_net_gain"].sum(),
        "selected_cost": chosen["action_cost"].sum(),
        "contacted_cost": chosen.loc[~held_out, "action_cost"].sum(),
    }


def test_totals_are_exact_sums_of_millionths(engine):
    """A tenth is not a binary fraction: a float sum of ten thousand of them drifts, the
    tallies do not (on any engine, in any order); missing values count as nothing."""
    frame = _scored(seed=3, rows=10_000)
    frame["clv"] = 0.1
    frame.loc[0, "value_at_risk"] = np.nan
    frame["selected"] = False
    frame["group"] = pd.array([None] * len(frame), dtype="str")
    tallies = engine.tallies(engine.from_pandas(frame))
    assert tallies["totals"]["clv"] == 1000.0 != float(np.cumsum(frame["clv"].to_numpy())[-1])
    assert tallies["totals"]["value_at_risk"] == pytest.approx(
        frame["value_at_risk"].sum(), rel=1e-12
    )
    assert tallies["counts"]["selected"] == 0 and tallies["counts"]["by_action"] == {}


def test_map_batches_applies_a_function_to_every_row(engine):
    frame = _scored(seed=5)

    def doubled(batches):
        for batch in batches:
            yield batch.assign(clv=batch["clv"] * 2)

    rows = engine.map_batches(engine.from_pandas(frame), doubled)
    found = engine.collect(rows, ["customer_id", "clv"]).sort_values("customer_id")
    expected = frame[["customer_id", "clv"]].sort_values("customer_id")
    assert found["clv"].tolist() == (expected["clv"] * 2).tolist()
    assert engine.count(rows) == len(frame)


# --------------------------------------------------------------------------- rows


def test_population_is_the_customers_active_at_the_cutoff(engine, tmp_path):
    """By ``recency_days`` (a purchase in the lookback), else by the transactions; in key
    order either way."""
    snapshot = tmp_path / "snapshot.parquet"
    pq.write_table(
        pa.table({
            "customer_id": ["d", "a", "c", "b"],
            "as_of": pa.array([pd.Timestamp(AS_OF)] * 4, pa.timestamp("us")),
            "recency_days": [400.0, 30.0, None, 365.0],
        }).sort_by("customer_id"),
        snapshot,
    )  # fmt: skip
    columns = ["customer_id", "as_of", "recency_days"]
    by_recency = engine.population(snapshot, columns, active_days=365)
    assert engine.collect(by_recency, ["customer_id"])["customer_id"].tolist() == ["a", "b"]
    stamps = ["2025-12-31 23:59:59", "2025-12-01 00:00:00", "2025-01-01 00:00:00",
              "2025-12-01 00:00:00"]  # fmt: skip
    transactions = pd.DataFrame(
        {"customer_id": ["c", "c", "d", "a"], "amount": [5.0, -5.0, 10.0, -1.0],
         "timestamp": pd.to_datetime(stamps).astype("datetime64[us]")}
    )  # fmt: skip
    sources = resolve_data({"transactions": transactions})
    by_purchases = engine.population(
        snapshot, columns, active_days=365, sources=sources, as_of=AS_OF
    )
    assert engine.collect(by_purchases, ["customer_id"])["customer_id"].tolist() == ["c", "d"]


def test_training_row_statistics_by_hand(engine):
    """Counts per cutoff, the profile of each feature (values outside an attribute's
    vocabulary count as missing, as models see them) and the classes per split."""
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "as_of": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 2).astype(
                "datetime64[us]"
            ),
            "varies": [1.0, 2.0, None, 1.0, 5.0, 6.0],
            "constant": [3.0, 3.0, None, 3.0, 9.0, 9.0],
            "empty": [None] * 6,
            "region": ["north", "mars", None, "north", "south", "west"],
            "churned": [True, False, False, True, True, False],
            "split": ["train"] * 4 + ["validation"] * 2,
        }
    )
    frame["empty"] = frame["empty"].astype(float)
    rows = engine.from_pandas(frame)
    counts = engine.cutoff_counts(rows)
    assert counts.index.tolist() == [date(2025, 1, 1), date(2025, 2, 1)]
    assert counts["rows"].tolist() == [4, 2] and counts["churn_rate"].tolist() == [0.5, 0.5]
    features = ["varies", "constant", "empty", "region"]
    profile = engine.column_profile(rows, features, {"region": ["north", "south", "other"]})
    assert profile.to_dict() == {
        "present": {"varies": 3, "constant": 3, "empty": 0, "region": 2},
        "distinct": {"varies": 2, "constant": 1, "empty": 0, "region": 1},
    }
    everything = engine.column_profile(rows, features, {}, None)
    assert (
        everything.loc["region"].tolist() == [5, 2] and everything.loc["constant", "distinct"] == 2
    )
    assert engine.class_counts(rows, "churned") == {"train": (2, 2), "validation": (1, 1)}
