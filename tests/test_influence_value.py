"""Influence value in the list: the profit to date of the customers each one referred, from
the P&L rule on every engine, and playbook rules on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.errors import ConfigError
from retain.features import resolve_data
from retain.serving.config import Action, Playbook, Rule, load_playbook
from retain.serving.gains import eligibility
from retain.serving.score import influence_values
from test_profitability import CUTOFF, RATES, WORLD

PLAYBOOK = """
actions:
  reminder_email: {cost: 0.3, save_rate: 0.04}
  ambassador_call: {cost: 15.0, save_rate: 0.3}
rules:
  - when: {influence_value: {min: 50}}
    action: ambassador_call
default: reminder_email
"""


def test_influence_values_are_the_pnl_influence_by_hand(engine):
    influence = influence_values(engine, WORLD, CUTOFF, margin_rate=0.25, cost_rates=RATES)
    # only A referred anyone (B and C): their profit to date, as in test_profit_and_loss_by_hand
    b = 1.0 - (2.0 + 0.2 + 1.0) - 2.0
    c = -3.0
    assert influence.index.tolist() == ["A"]
    assert influence["A"] == pytest.approx(b + c)


def test_no_referrer_costs_nothing_and_gives_no_influence(engine):
    tables = dict(WORLD.tables)
    tables["customers"] = tables["customers"].drop_columns(["referred_by"])
    sources = resolve_data(tables)
    assert not sources.has_referrals
    assert influence_values(engine, sources, CUTOFF).empty


def test_the_store_record_remembers_whether_there_are_referrals():
    assert WORLD.has_referrals
    record = WORLD.record()
    assert record["referrals"] is True
    unread = resolve_data(dict(WORLD.tables))
    unread._referrals = None
    unread.recall({**record, "fingerprint": unread.fingerprint, "referrals": False})
    assert unread.has_referrals is False  # taken from the record, not the tables


def test_a_playbook_rule_on_influence_value(tmp_path):
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK)
    playbook = load_playbook(path)
    assert playbook.rules[0].ranges == {"influence_value": (50.0, None)}
    frame = pd.DataFrame({"influence_value": [0.0, 49.99, 50.0, 400.0, np.nan]})
    allowed = eligibility(frame, pd.Series([""] * 5), playbook)
    assert allowed["ambassador_call"].tolist() == [False, False, True, True, False]
    assert allowed["reminder_email"].all()


def test_a_range_with_both_bounds_and_other_conditions():
    playbook = Playbook(
        {"a": Action(1.0, 0.1), "b": Action(2.0, 0.2)},
        (Rule("b", {"value_tier": ["high"]}, {"influence_value": (10.0, 100.0)}),),
        default="a",
    )
    frame = pd.DataFrame(
        {"value_tier": ["high", "high", "low", "high"], "influence_value": [10.0, 100.5, 50, 100]}
    )
    allowed = eligibility(frame, pd.Series([""] * 4), playbook)
    assert allowed["b"].tolist() == [True, False, False, True]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("{influence_value: [high]}", "takes a range such as {min: 50}"),
        ("{influence_value: {min: lots}}", "'min' must be a number"),
        ("{influence_value: {above: 3}}", "takes a range"),
        ("{influence_value: {min: 9, max: 3}}", "min 9 is above max 3"),
        ("{influence: {min: 3}}", "unknown condition"),
    ],
)
def test_bad_influence_conditions_name_the_rule(tmp_path, condition, message):
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK.replace("{influence_value: {min: 50}}", condition))
    with pytest.raises(ConfigError, match="rule 1") as raised:
        load_playbook(path)
    assert message in str(raised.value)


def test_the_list_carries_influence_and_a_rule_on_it_opens_an_action(
    trained_models, trained_workspace, tmp_path
):
    """End to end: customers who referred others get their referrals' profit to date in the
    list, and a playbook rule on it opens an action to them alone."""
    import shutil
    from datetime import date

    from retain.engines import get_engine
    from retain.serving import score

    as_of = date(2026, 1, 1)
    workspace = tmp_path / "referrals"
    shutil.copytree(trained_workspace, workspace, ignore=shutil.ignore_patterns("lists", "store"))
    data = workspace / "data" / "simulated"
    customers = pd.read_parquet(data / "customers.parquet").sort_values("signup_date")
    early, late = customers.index[:40], customers.index[len(customers) // 2 :]
    referred = pd.Series(pd.NA, index=customers.index, dtype="object")
    referred[late[::5]] = customers.loc[early, "customer_id"].to_numpy()[
        np.arange(len(late[::5])) % len(early)
    ]
    customers["referred_by"] = referred
    customers.sort_index().to_parquet(data / "customers.parquet", index=False)
    playbook = workspace / "serving" / "playbook.yaml"
    text = playbook.read_text().replace(
        "actions:\n", "actions:\n  thank_referrer:\n    cost: 0.0\n    save_rate: 0.5\n", 1
    )
    playbook.write_text(
        text.replace("rules:\n", "rules:\n  - when: {influence_value: {min: 1}}\n"
                     "    action: thank_referrer\n", 1)
    )  # fmt: skip
    listing = score(as_of, workspace=workspace, out=workspace / "list").frame
    expected = influence_values(get_engine(), resolve_data(data), as_of)
    assert (expected > 1).sum() >= 5
    by_id = listing.set_index("customer_id")["influence_value"]
    np.testing.assert_allclose(by_id, expected.reindex(by_id.index).fillna(0.0).to_numpy())
    referrers = listing["influence_value"] >= 1
    assert referrers.any()
    assert ((listing["recommended_action"] == "thank_referrer") == referrers).all()
