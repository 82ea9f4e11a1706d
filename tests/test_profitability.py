"""Cost to serve and profit: the cost events, the outcomes' future cost and profit, and each
customer's profit and loss, computed by hand and checked on every engine."""

from __future__ import annotations

import json
import math
from datetime import date

import pandas as pd
import pytest

from retain.errors import ConfigError
from retain.features import resolve_data

CUTOFF = date(2025, 1, 1)
MONTH = 365.25 / 12
#: Configured costs (``retain.yaml`` ``costs:``): per order, 2% payment, complaints, tickets.
RATES = {"order": 1.0, "payment": 0.02, "complaint": 10.0, "support_ticket": 4.0}


def _frame(rows, columns, times=("timestamp",)) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for name in times:
        frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype("datetime64[us]")
    return frame


def _world():
    customers = _frame(
        [
            ("A", "2024-01-01", "paid_search", 5.0, "north", None),
            ("B", "2024-06-01", "referral", 2.0, "south", "A"),
            ("C", "2024-12-31", "social", 3.0, "south", "A"),  # no purchase yet
            ("D", None, None, None, None, None),  # known from its first purchase
            ("E", "2025-02-01", "social", 3.0, "east", None),  # joins after the cutoff
            ("F", "2024-01-01", "organic", 10.0, "west", None),
        ],
        ["customer_id", "signup_date", "acquisition_channel", "acquisition_cost", "region",
         "referred_by"],
        times=("signup_date",),
    )  # fmt: skip
    transactions = _frame(
        [
            ("A", "2024-01-02 10:00", 100.0, 30.0),
            ("A", "2024-03-05 10:00", 40.0, None),  # margin 40 * 0.25
            ("A", "2024-03-10 10:00", -20.0, -5.0),  # a return
            ("A", "2025-01-01 00:00", 50.0, None),  # at the cutoff: the future
            ("B", "2024-06-10 10:00", 10.0, 1.0),
            ("D", "2024-12-31 23:59:59", 8.0, 2.0),
            ("F", "2024-01-10 10:00", 20.0, 4.0),
            ("F", "2024-04-15 10:00", 50.0, 12.0),
        ],
        ["customer_id", "timestamp", "amount", "margin"],
    )
    interactions = _frame(
        [
            ("A", "2024-02-01 09:00", "complaint"),
            ("A", "2024-12-31 23:00", "support_ticket"),
            ("A", "2025-01-02 09:00", "complaint"),  # the future
            ("B", "2024-07-01 09:00", "web_visit"),  # no cost configured
        ],
        ["customer_id", "timestamp", "type"],
    )
    costs = _frame(
        [
            ("A", "2024-01-02 10:00", "fulfilment", 3.0),
            ("A", "2024-03-10 10:00", "return_processing", 1.5),
            ("A", "2025-01-05 10:00", "fulfilment", 9.0),  # the future
            ("B", "2024-06-10 10:00", "fulfilment", 2.0),
            ("D", "2024-12-31 12:00", "gift_wrap", 0.5),  # a kind of its own: other
        ],
        ["customer_id", "timestamp", "kind", "amount"],
    )
    return resolve_data(
        {"customers": customers, "transactions": transactions, "interactions": interactions,
         "costs": costs}
    )  # fmt: skip


WORLD = _world()


def test_profit_and_loss_by_hand(engine):
    pnl = engine.profit_and_loss(WORLD, CUTOFF, margin_rate=0.25, cost_rates=RATES)
    assert pnl["customer_id"].tolist() == ["A", "B", "C", "D", "F"]  # E joins later
    assert (pnl["as_of"] == pd.Timestamp(CUTOFF)).all()
    pnl = pnl.set_index("customer_id")
    a = pnl.loc["A"]
    assert (a.orders, a.returns) == (2, 1)
    assert a.revenue == pytest.approx(120.0)
    assert a.margin == pytest.approx(35.0)
    assert a.cost_fulfilment == pytest.approx(3.0)
    assert a.cost_return_processing == pytest.approx(1.5)
    assert a.cost_complaint == pytest.approx(10.0)  # the one before the cutoff
    assert a.cost_support_ticket == pytest.approx(4.0)
    assert a.cost_payment == pytest.approx(0.02 * 140.0)  # orders only, not the return
    assert a.cost_order == pytest.approx(2.0)
    assert a.cost_to_serve == pytest.approx(23.3)
    assert a.profit_to_date == pytest.approx(35.0 - 23.3 - 5.0)
    assert a.tenure_months == pytest.approx(366 / MONTH)
    # month 0: 30 - 3 - 2 - 1 = 24 >= 5
    assert a.payback_months == 1
    assert a.referrals == 2  # B and C
    b, c = pnl.loc["B"], pnl.loc["C"]
    assert b.profit_to_date == pytest.approx(1.0 - (2.0 + 0.2 + 1.0) - 2.0)
    assert math.isnan(b.payback_months)  # not paid back
    assert c.profit_to_date == pytest.approx(-3.0)
    assert a.influence_realised == pytest.approx(b.profit_to_date + c.profit_to_date)
    d = pnl.loc["D"]
    assert d.cost_other == pytest.approx(0.5)
    assert d.cost_to_serve == pytest.approx(0.16 + 1.0 + 0.5)
    assert d.acquisition_cost == 0.0 and d.payback_months == 0  # nothing to pay back
    assert d.tenure_months == pytest.approx(1 / MONTH)
    assert pd.isna(d.acquisition_channel)
    # F: month 0: 4 - 0.4 - 1 = 2.6; month 3 (day 105): 12 - 1 - 1 = 10; 12.6 >= 10
    f = pnl.loc["F"]
    assert f.payback_months == 4
    assert f.profit_to_date == pytest.approx(16.0 - 3.4 - 10.0)
    assert f.referrals == 0 and f.influence_realised == 0.0


def test_profit_and_loss_without_costs_is_margin_less_acquisition(engine):
    """No rate and no log: the cost to serve is 0 (a workspace without costs)."""
    bare = resolve_data({name: WORLD.tables[name] for name in WORLD.tables})
    pnl = engine.profit_and_loss(bare, CUTOFF, margin_rate=0.25).set_index("customer_id")
    assert (pnl["cost_to_serve"] == 0).all()
    expected = pnl["margin"] - pnl["acquisition_cost"]
    pd.testing.assert_series_equal(pnl["profit_to_date"], expected, check_names=False)


def test_buyers_missing_from_customers_have_a_pnl(engine):
    only = resolve_data({"transactions": WORLD.tables["transactions"]})
    pnl = engine.profit_and_loss(only, CUTOFF, margin_rate=0.25).set_index("customer_id")
    assert pnl.index.tolist() == ["A", "B", "D", "F"]
    assert pnl.loc["A", "margin"] == pytest.approx(35.0) and pnl["acquisition_cost"].eq(0).all()
    assert pnl.loc["A", "tenure_months"] == pytest.approx(365 / MONTH)  # from the first purchase


def test_outcomes_add_future_cost_and_profit(engine):
    labels = engine.outcomes(
        WORLD, [CUTOFF], horizon_days=90, active_days=365, margin_rate=0.25, cost_rates=RATES
    ).set_index("customer_id")
    assert labels.index.tolist() == ["A", "B", "D", "F"]
    # A: the order at the cutoff (margin 12.5; order 1, payment 1), the complaint (10) and
    # the fulfilment (9) after it
    assert labels.loc["A", "future_margin"] == pytest.approx(12.5)
    assert labels.loc["A", "future_cost"] == pytest.approx(21.0)
    assert labels.loc["A", "future_profit"] == pytest.approx(12.5 - 21.0)
    assert (labels.loc[["B", "D", "F"], ["future_cost", "future_profit"]] == 0).all().all()


def test_a_kind_both_configured_and_logged_is_refused(engine):
    with pytest.raises(ConfigError, match="'fulfilment'.*counted twice"):
        engine.profit_and_loss(WORLD, CUTOFF, cost_rates={"fulfilment": 1.0})


# --------------------------------------------------------------------------- the command

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from retain.cli import app  # noqa: E402

runner = CliRunner()
CUSTOMERS_CSV = (
    "customer_id,signup_date,acquisition_channel,acquisition_cost,region,referred_by\n"
    "A,2024-01-01,paid_search,5,north,\nB,2024-06-01,referral,2,south,A\n"
)
TRANSACTIONS_CSV = (
    "customer_id,timestamp,amount,margin\nA,2024-01-02T10:00,100,30\nA,2024-03-05T10:00,40,\n"
    "B,2024-06-10T10:00,10,1\n"
)
COSTS_CSV = "customer_id,timestamp,kind,amount\nA,2024-01-02T10:00,fulfilment,3\n"


@pytest.fixture
def small_workspace(make_workspace) -> Path:
    return make_workspace(
        "profitability", scaffold=False,
        files={"data/simulated/customers.csv": CUSTOMERS_CSV,
               "data/simulated/transactions.csv": TRANSACTIONS_CSV,
               "data/simulated/costs.csv": COSTS_CSV,
               "retain.yaml": "costs: {per_order: 1.0, payment_share: 0.02}\n"},
    )  # fmt: skip


def test_the_command_writes_the_pnl_without_models(small_workspace, mlflow_isolation):
    with mlflow_isolation():
        result = runner.invoke(
            app, ["profitability", "--workspace", str(small_workspace), "--as-of", "2025-01-01"]
        )
    assert result.exit_code == 0, result.output
    out = small_workspace / "serving" / "profitability" / "2025-01-01"
    assert str(out) in result.output.replace("\n", "")
    names = sorted(path.name for path in out.iterdir())
    assert names == [".retain-output.json", "by_acquisition_channel.parquet",
                     "by_region.parquet", "pnl.parquet", "summary.json"]  # fmt: skip
    pnl = pd.read_parquet(out / "pnl.parquet").set_index("customer_id")
    # A: margin 30 + 40 * 0.3 (margin_rate); fulfilment 3 (logged), 2 orders x 1, 2% of 140
    assert pnl.loc["A", "cost_to_serve"] == pytest.approx(3.0 + 2.0 + 2.8)
    assert pnl.loc["A", "profit_to_date"] == pytest.approx(42.0 - 7.8 - 5.0)
    assert pnl.loc["B", "profit_to_date"] == pytest.approx(1.0 - 1.2 - 2.0)
    assert pnl.loc["A", "influence_realised"] == pytest.approx(pnl.loc["B", "profit_to_date"])
    assert "predicted_future_profit" not in pnl and pnl["lifetime_value"].isna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unprofitable"] == 1 and summary["unprofitable_share"] == 0.5
    assert any("no predicted profit" in note for note in summary["notes"])
    channels = pd.read_parquet(out / "by_acquisition_channel.parquet").set_index(
        "acquisition_channel"
    )
    assert channels.loc["paid_search", "profit_to_date"] == pytest.approx(29.2)
    assert channels.loc["referral", "unprofitable"] == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("costs: {per_order: -1}\n", "'costs.per_order' must be a finite amount of 0 or more"),
        ("costs: {shipping_share: 2}\n", "'costs.shipping_share' is a share of the amount"),
        ("costs: {per_interaction: {complaint: abc}}\n", "'costs.per_interaction.complaint'"),
        ("costs: {per_interaction: {fulfilment: 2}}\n", "'fulfilment', which the costs table logs"),
        ("costs: {per_ordr: 1}\n", "unknown key 'costs.per_ordr'"),
    ],
)
def test_bad_costs_are_refused_and_nothing_is_written(small_workspace, config, message):
    (small_workspace / "retain.yaml").write_text(config)
    result = runner.invoke(
        app, ["profitability", "--workspace", str(small_workspace), "--as-of", "2025-01-01"]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (small_workspace / "serving").exists()


def test_a_folder_retain_did_not_write_is_not_replaced(small_workspace, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = runner.invoke(
        app, ["profitability", "--workspace", str(small_workspace), "--out", str(mine)]
    )
    assert result.exit_code == 2, result.output
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------- pieces


def test_whale_curve_by_hand():
    from retain.serving.profitability import whale_curve

    curve = whale_curve(np.array([-2.0, 6.0, 1.0, -1.0]), points=5)
    # ranked 6, 1, -1, -2 of a total 4: after 0, 1, 2, 3, 4 customers
    assert curve["customer_share"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve["profit_share"] == [0.0, 1.5, 1.75, 1.5, 1.0]


def test_cost_to_serve_learns_its_scales():
    from retain.models.clv.cost import CostToServe

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"expected_orders": rng.uniform(0, 5, 500), "cost_per_order": rng.uniform(1, 3, 500),
         "alive_days": rng.uniform(0, 300, 500), "service_cost_per_day": rng.uniform(0, 0.1, 500),
         "days": 340.0, "contact_cost_per_day": rng.uniform(0, 0.01, 500)}
    )  # fmt: skip
    y = (0.8 * X.expected_orders * X.cost_per_order + 1.5 * X.alive_days * X.service_cost_per_day
         + 0.5 * X.days * X.contact_cost_per_day)  # fmt: skip
    model = CostToServe().fit(X, y)
    assert model.order_scale_ == pytest.approx(0.8) and model.service_scale_ == pytest.approx(1.5)
    assert model.contact_scale_ == pytest.approx(0.5)
    np.testing.assert_allclose(model.predict(X), y)
    assert CostToServe().fit(X).order_scale_ == 1.0  # without realised costs: the rates as such
    assert (CostToServe().fit(X * 0, y * 0).predict(X * 0) == 0).all()


def test_the_report_shows_the_profitability_section():
    from retain.reports.profitability import profitability_section

    summary = {
        "currency": "EUR", "customers": 4, "unprofitable": 2, "unprofitable_share": 0.5,
        "totals": {"profit_to_date": 4.0, "margin": 10.0, "cost_to_serve": 4.0,
                   "acquisition_cost": 2.0},
        "whale_curve": {"customer_share": [0, 0.5, 1], "profit_share": [0, 1.75, 1],
                        "peak_profit_share": 1.75, "top_20_percent_profit_share": 1.2},
        "drivers": {"means": {"cost_complaint": {"unprofitable": 3.0, "profitable": 0.5}},
                    "over_representation": {"acquisition_channel": {"<paid>": 1.5}}},
        "notes": [],
    }  # fmt: skip
    channels = pd.DataFrame(
        {"acquisition_channel": ["<paid>"], "customers": [4], "unprofitable": [2],
         "unprofitable_share": [0.5], "revenue": [20.0], "margin": [10.0],
         "cost_to_serve": [4.0], "acquisition_cost": [2.0], "profit_to_date": [4.0],
         "profit_share": [1.0], "clv_to_cac": [3.0], "paid_back_share": [0.5],
         "payback_months_median": [2.0]}
    )  # fmt: skip
    html = profitability_section({"summary": summary, "tables": {"acquisition_channel": channels}})
    assert "50.0%</strong> of customers destroy profit" in html
    assert "Whale curve" in html and "data:image/png;base64," in html
    assert "&lt;paid&gt; ×1.50" in html and "<paid>" not in html
    assert "CLV : CAC and payback by acquisition channel" in html


# --------------------------------------------------------------------------- no leakage


@pytest.fixture(scope="module")
def costly_world():
    from retain.data.simulator import simulate_world

    return simulate_world(600, seed=3, costs=True, referrals=True)


def test_the_pnl_ignores_events_at_or_after_the_cutoff(costly_world, engine):
    """Deleting every transaction, interaction and cost at or after the cutoff changes no
    value of the P&L, configured costs included."""
    world, cutoff = costly_world, date(2025, 3, 1)
    tables = {"customers": world.customers, "transactions": world.transactions,
              "interactions": world.interactions, "costs": world.costs}  # fmt: skip
    stamp = pd.Timestamp(cutoff)
    before = {
        name: frame if name == "customers" else frame[frame["timestamp"] < stamp]
        for name, frame in tables.items()
    }
    assert (world.transactions["timestamp"] >= stamp).any() and (world.costs.amount > 0).any()
    rates = {"order": 0.5, "web_visit": 0.1, "shipping": 0.01}  # kinds the log lacks
    full = engine.profit_and_loss(resolve_data(tables), cutoff, cost_rates=rates)
    cut = engine.profit_and_loss(resolve_data(before), cutoff, cost_rates=rates)
    pd.testing.assert_frame_equal(full, cut)
    assert (full["cost_to_serve"] > 0).mean() > 0.5 and full["referrals"].sum() > 0


# --------------------------------------------------------------------------- with the champions


def test_without_costs_the_predicted_profit_is_the_lists_clv(trained_models, trained_workspace):
    """A world without costs: nothing costs, so the predicted future profit is the CLV the
    list holds (scored by ``retain score``, another path), customer by customer; the report
    of the list shows the profitability section found beside it."""
    from retain.reports.html import render_report
    from retain.serving.profitability import profitability
    from retain.serving.score import score

    as_of = date(2026, 1, 1)
    listing = score(as_of, workspace=trained_workspace, out=trained_workspace / "pl" / "list")
    result = profitability(as_of, workspace=trained_workspace, out=trained_workspace / "pl" / "p")
    pnl = result.pnl.set_index("customer_id")
    assert (pnl["cost_to_serve"] == 0).all() and (pnl["predicted_cost_to_serve"] == 0).all()
    clv = listing.frame.set_index("customer_id")["clv"]
    np.testing.assert_allclose(pnl.loc[clv.index, "predicted_future_profit"], clv, rtol=1e-12)
    assert set(result.tables) == {"segment", "value_tier", "lifecycle_stage",
                                  "acquisition_channel", "region"}  # fmt: skip
    tiers = listing.frame.set_index("customer_id")["value_tier"]
    assert (pnl.loc[tiers.index, "value_tier"] == tiers).all()
    report = render_report(listing.out, trained_workspace / "pl" / "report.html",
                           profitability=result.out)  # fmt: skip
    assert "<h2>Profitability</h2>" in report.read_text()


def test_a_report_regenerated_by_score_finds_the_profitability_folder(
    trained_models, trained_workspace
):
    """``retain score`` regenerates a list's report in a temporary folder before the swap: the
    profitability folder of the cutoff beside the list's final folder is found all the same."""
    from retain.reports.html import render_report
    from retain.serving.profitability import profitability
    from retain.serving.score import score

    as_of = date(2026, 1, 1)
    serving = trained_workspace / "regenerated"  # the layout of serving/output/<as_of>
    out = serving / "output" / str(as_of)
    profitability(as_of, workspace=trained_workspace, out=serving / "profitability" / str(as_of))
    first = score(as_of, workspace=trained_workspace, out=out, capacity=40)
    page = render_report(first.out, out / "report.html").read_text()
    assert "<h2>Profitability</h2>" in page
    again = score(as_of, workspace=trained_workspace, out=out, capacity=50,
                  render_report=render_report)  # fmt: skip
    assert again.report == "regenerated"
    page = (out / "report.html").read_text()
    assert "capacity 50 customers" in page and "<h2>Profitability</h2>" in page


def test_with_costs_the_clv_is_net_profit(make_workspace, mlflow_isolation):
    """A world with cost to serve: the CLV model learns the future cost too, its CLV is the
    margin less that cost, it is judged on realised net profit, and the P&L takes both."""
    from retain.data.simulator import simulate_world
    from retain.serving.profitability import profitability
    from retain.training.jobs import run_training

    world = simulate_world(1500, seed=5, costs=True)
    workspace = make_workspace("costly", data=world)
    with mlflow_isolation(workspace):
        [job] = run_training("clv", workspace=workspace)
        model = job.model
        assert model.cost_ is not None
        result = profitability(world.end, workspace=workspace, models={"clv": job.version})
    pnl = result.pnl
    assert (pnl["predicted_cost_to_serve"] > 0).mean() > 0.9
    # the P&L's margin is the chosen method's own; its CLV that less the expected cost of the
    # cost method validation chose (the regressor, or the margin times the cost share to date)
    snapshot = pd.read_parquet(next((workspace / "store" / "snapshots" /
                                     f"as_of={world.end}").glob("*.parquet")))  # fmt: skip
    from retain.features import open_store, with_categories
    from retain.features.store import categories
    from retain.workspace import load_workspace_config

    store = open_store(load_workspace_config(workspace), workspace)
    X = with_categories(snapshot, categories(store.repository)).set_index("customer_id")
    X = X.reindex(pnl["customer_id"]).drop(columns=["as_of"]).reset_index(drop=True)
    part = model.ml_ if model.method_ == "ml" else model.btyd_
    np.testing.assert_allclose(pnl["predicted_margin"], part.predict(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        pnl["predicted_future_profit"], part.predict(X) - model.expected_cost(X), atol=1e-9
    )
    expected_how = {"regressor": "its cost regressor", "share": "cost share to date"}
    assert any(expected_how[model.cost_method_] in note for note in result.summary["notes"])
    assert result.summary["totals"]["cost_to_serve"] > 0


def test_cost_share_by_hand():
    from retain.models.clv.value import MAX_COST_SHARE, cost_share

    X = pd.DataFrame({"cost_to_serve_total": [10.0, 0.0, 5.0, 3.0, 90.0],
                      "margin_to_date": [40.0, 20.0, 0.0, -2.0, 10.0]})  # fmt: skip
    shares = cost_share(X, fallback=0.3)
    assert shares.tolist() == [0.25, 0.0, 0.3, 0.3, MAX_COST_SHARE]  # no margin: the fallback
    # margin to date from the net profit to date: margin - cost to serve - acquisition cost
    derived = pd.DataFrame({"cost_to_serve_total": [10.0], "net_profit_to_date": [25.0],
                            "acquisition_cost": [5.0]})  # fmt: skip
    assert cost_share(derived, fallback=0.3).tolist() == [0.25]
    assert cost_share(X.drop(columns="margin_to_date"), fallback=0.3) is None
    assert cost_share(X.drop(columns="cost_to_serve_total"), fallback=0.3) is None


MARGIN_VIEW = """
from retain.features import Entity, FeatureView, WindowAggregate

margin = FeatureView(
    name="margin_to_date",
    entity=Entity("customer", join_key="customer_id"),
    source="transactions",
    description="Margin earned to date.",
    features=[WindowAggregate("margin_to_date", "sum", "margin")],
)
"""


def test_the_profit_clv_weighs_the_cost_share_against_the_regressor(
    make_workspace, mlflow_isolation
):
    """With the cost and margin to date among the features, validation decides whether the
    expected cost is the regressor's or the predicted margin times the cost share (scaled to
    the realised cost); the P&L and the CLV use the same; a snapshot without the margin to
    date cannot be priced by a share model and says so."""
    import shutil

    from mlflow import MlflowClient

    from retain.data.simulator import simulate_world
    from retain.features import open_store, with_categories
    from retain.features.store import categories
    from retain.models.clv.value import cost_share
    from retain.serving.profitability import profitability
    from retain.training.jobs import run_training
    from retain.workspace import load_workspace_config, locate

    world = simulate_world(1500, seed=5, costs=True)
    workspace = make_workspace("cost_share", data=world)
    shutil.rmtree(workspace / "features", ignore_errors=True)
    shutil.copytree(locate(workspace, "features"), workspace / "features")
    (workspace / "features" / "margin.py").write_text(MARGIN_VIEW)
    with mlflow_isolation(workspace):
        [job] = run_training("clv", workspace=workspace)
        result = profitability(world.end, workspace=workspace, models={"clv": job.version})
        params = MlflowClient().get_run(job.run_id).data.params
    model = job.model
    assert "margin_to_date" in job.manifest["features"]
    assert params["model.cost_method"] == model.cost_method_
    gini = model.validation_cost_gini_
    assert set(gini) == {"regressor", "share"} and model.cost_method_ == max(gini, key=gini.get)
    assert all(scale > 0 for scale in model.cost_scales_.values())
    snapshot = pd.read_parquet(next((workspace / "store" / "snapshots" /
                                     f"as_of={world.end}").glob("*.parquet")))  # fmt: skip
    store = open_store(load_workspace_config(workspace), workspace)
    X = with_categories(snapshot, categories(store.repository)).set_index("customer_id")
    X = X.reindex(result.pnl["customer_id"]).drop(columns=["as_of"]).reset_index(drop=True)
    part = model.ml_ if model.method_ == "ml" else model.btyd_
    np.testing.assert_allclose(result.pnl["predicted_future_profit"], model.predict(X), atol=1e-9)
    model.cost_method_ = "share"  # the share's cost, whichever validation chose
    share = cost_share(X, model.cost_share_fallback_)
    scale = model.cost_scales_[model.method_]
    np.testing.assert_allclose(model.expected_cost(X), part.predict(X) * share * scale)
    np.testing.assert_allclose(model.predict(X), part.predict(X) * (1 - share * scale))
    with pytest.raises(ValueError, match="margin_to_date"):
        model.predict(X.drop(columns="margin_to_date"))
