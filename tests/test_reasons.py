"""Reasons: a table entry for every default feature, rendered with numbers, units, plurals and
no NaN; a reason only where the value raises the risk; context for low-risk customers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from retain.errors import ConfigError
from retain.features import load_repository
from retain.metrics.drift import reference_profile
from retain.serving.reasons import (
    PACKAGED_TABLE,
    TABLE_FILE,
    Explainer,
    load_phrase_table,
    phrase_table_for,
    typical_from_frame,
    typical_from_profile,
)
from retain.workspace import PACKAGED

CURRENCY = "EUR"
NUMBER = re.compile(r"(?<![\w.,])-?\d[\d,]*(?:\.\d+)?")
#: Values every feature is rendered with: zero, one, several, fractions, large, unknown.
VALUES = [0.0, 1.0, 2.0, 0.25, 7.4, 1234.567, np.nan, 0.5, 99.996, -3.0]


@pytest.fixture(scope="module")
def table():
    return load_phrase_table(PACKAGED_TABLE)


@pytest.fixture(scope="module")
def repository():
    return load_repository(PACKAGED / "features")


def _grid(repository) -> pd.DataFrame:
    """One row per test value, every default feature holding it (text attributes a word)."""
    columns = {}
    for view in repository.views:
        for feature in view.features:
            for name in feature.outputs:
                if getattr(feature, "categories", None):
                    columns[name] = pd.Categorical(
                        ([feature.categories[0], None] * len(VALUES))[: len(VALUES)],
                        categories=feature.categories,
                    )
                else:
                    columns[name] = VALUES
    return pd.DataFrame(columns)


def _allowed_after_numbers(table, phrase) -> list[str]:
    """What may follow a number in a phrase: a unit, a percent sign, the currency, a noun."""
    allowed = [" day", "%", f" {CURRENCY}"]
    if phrase is not None and phrase.unit:
        allowed += [f" {phrase.unit[0]}", f" {phrase.unit[1]}"]
    return allowed


def _problems(text: str, table, phrase) -> list[str]:
    problems = []
    if not text or not text.strip():
        problems.append("empty")
    if re.search(r"\bnan\b|\bNone\b|\binf\b|<NA>|[{}]", text, flags=re.IGNORECASE):
        problems.append("a missing value or a placeholder")
    for match in NUMBER.finditer(text):
        after = text[match.end() :]
        shown = float(match.group().replace(",", ""))
        if phrase is not None and phrase.format == "score":
            continue  # a score has no unit
        if not any(after.startswith(unit) for unit in _allowed_after_numbers(table, phrase)):
            problems.append(f"no unit after {match.group()!r}")
        one, other = table.units["days"]
        plural = [other.removeprefix("{n} ")] + ([phrase.unit[1]] if phrase and phrase.unit else [])
        singular = [one.removeprefix("{n} ")] + ([phrase.unit[0]] if phrase and phrase.unit else [])
        words = after.lstrip()
        if shown == 1 and any(re.match(rf"{re.escape(p)}\b", words) for p in plural):
            problems.append(f"plural after 1: {text!r}")
        if shown != 1 and any(
            re.match(rf"{re.escape(s)}\b(?!s)", words) and not re.match(rf"{re.escape(p)}\b", words)
            for s, p in zip(singular, plural, strict=True)
        ):
            problems.append(f"singular after {match.group()}")
    return problems


def test_every_default_feature_has_a_phrase_that_renders_cleanly(table, repository):
    frame = _grid(repository)
    typical = {name: 3.0 for name in frame.columns}
    with_reference = Explainer(table, typical, 0.4, CURRENCY)
    without_reference = Explainer(table, {}, 0.4, CURRENCY)
    for feature in repository.feature_names:
        phrase, _ = table.lookup(feature)
        covered = any(feature in (p.covers or ()) for p in table.phrases.values())
        assert phrase is not None or covered, f"{feature} has no phrase in {PACKAGED_TABLE}"
        if phrase is None:
            continue
        unknown = frame[feature].isna().to_numpy()
        for explainer in (with_reference, without_reference):
            texts = explainer.phrases(feature, frame)
            # an unknown value is no reason, unless the table words it ("never visited")
            assert (texts[unknown] == "").all() or phrase.missing is not None, feature
            for text in texts[~unknown] if phrase.missing is None else texts:
                assert not _problems(text, table, phrase), (feature, text)


def test_phrases_by_hand(table):
    frame = pd.DataFrame(
        {
            "recency_days": [39.0, 1.0, 60.0],
            "purchase_gap_mean_days": [7.2, 1.0, np.nan],
            "complaints_30d": [2.0, 1.0, 0.0],
            "spend_trend_90d": [0.4, 0.0, 1.5],
            "orders_90d": [0.0, 1.0, 3.0],
            "frequency": [40.0, 30.0, 3.0],
            "days_since_first_purchase": [900.0, 900.0, 100.0],
            "monetary_mean": [211.714, 12.5, np.nan],
        }
    )
    explainer = Explainer(table, {"recency_days": 25.0, "monetary_mean": 80.0}, 0.4, "USD")
    assert explainer.phrases("recency_days", frame).tolist() == [
        "no purchase for 39 days; usually buys every 7 days",
        "no purchase for 1 day; usually buys every 1 day",
        "no purchase for 60 days; typically 25 days",
    ]
    assert explainer.phrases("complaints_30d", frame).tolist()[:2] == [
        "2 complaints in the last 30 days",
        "1 complaint in the last 30 days",
    ]
    assert explainer.phrases("spend_trend_90d", frame).tolist()[:2] == [
        "spend down 60% on the previous 90 days",
        "no spend in the last 90 days, after buying in the 90 days before",
    ]
    assert explainer.phrases("orders_90d", frame).tolist()[:2] == [
        "no order in the last 90 days; usually about 4 orders",
        "1 order in the last 90 days; usually about 3 orders",
    ]
    assert explainer.phrases("monetary_mean", frame).tolist()[:2] == [
        "average order only 212 USD; typically 80.00 USD",
        "average order only 12.50 USD; typically 80.00 USD",
    ]


def test_a_share_that_rounds_to_0_or_100_percent_is_said_to_be_under_1_or_over_99(table):
    frame = pd.DataFrame({"purchase_gap_probability": [0.003, 0.0, 0.2], "spend_trend_90d": [
        0.004, 0.998, 0.4]})  # fmt: skip
    explainer = Explainer(table, {"purchase_gap_probability": 0.29}, 0.4, "USD")
    gaps = explainer.phrases("purchase_gap_probability", frame).tolist()
    assert gaps[0].startswith("a silence this long happens only under 1% of the time"), gaps
    assert gaps[1].startswith("a silence this long happens only 0% of the time"), gaps
    assert gaps[2].startswith("a silence this long happens only 20% of the time"), gaps
    trends = explainer.phrases("spend_trend_90d", frame).tolist()
    assert trends[0] == "spend down over 99% on the previous 90 days", trends
    assert trends[1] == "spend down under 1% on the previous 90 days", trends


def _explained(table, features, contributions, probability, typical=None, tier=None):
    explainer = Explainer(table, typical or {}, 0.4, CURRENCY)
    clv = np.full(len(features), 1234.5)
    tiers = np.asarray(tier if tier is not None else ["medium"] * len(features), dtype=object)
    return explainer.explain(
        pd.DataFrame(contributions).assign(bias=-0.5), features, np.asarray(probability), clv,
        tiers,
    )  # fmt: skip


def test_a_positive_contribution_is_a_reason_only_on_the_risky_side(table):
    """Both customers' order counts and complaints push the score up; only the one whose
    orders fell below their own rate and who complained gets those reasons."""
    features = pd.DataFrame(
        {
            "orders_90d": [0.0, 9.0],
            "frequency": [40.0, 40.0],
            "days_since_first_purchase": [900.0, 900.0],
            "complaints_30d": [2.0, 0.0],
        }
    )
    contributions = {
        "orders_90d": [0.8, 0.8],
        "frequency": [0.0, 0.0],
        "days_since_first_purchase": [0.0, 0.0],
        "complaints_30d": [0.3, 0.3],
    }
    reasons, top = _explained(
        table, features, contributions, [0.7, 0.7], typical={"complaints_30d": 0.0}
    )
    assert reasons.loc[0].tolist() == [
        "no order in the last 90 days; usually about 4 orders",
        "2 complaints in the last 30 days",
        "",
    ]
    assert top.tolist() == ["orders_90d", ""]
    assert reasons.loc[1, "reason_1"].startswith("churn risk 70% from many small signals")
    assert not (reasons.loc[1, ["reason_2", "reason_3"]] != "").any()


def test_static_traits_only_when_nothing_else_applies(table):
    features = pd.DataFrame(
        {
            "recency_days": [50.0, 5.0],
            "purchase_gap_mean_days": [10.0, 10.0],
            "acquisition_channel": pd.Categorical(["social", "social"]),
            "days_since_web_visit": [np.nan, np.nan],
        }
    )
    contributions = {
        "recency_days": [0.2, 0.2],
        "purchase_gap_mean_days": [0.1, 0.1],
        "acquisition_channel": [0.9, 0.9],
        "days_since_web_visit": [0.5, 0.5],
    }
    reasons, top = _explained(table, features, contributions, [0.8, 0.8])
    overdue = "no purchase for 50 days; usually buys every 10 days"
    assert reasons.loc[0].tolist() == [overdue, "", ""]
    assert reasons.loc[1].tolist() == ["acquired through social", "never visited the website", ""]
    assert top.tolist() == ["recency_days", "acquisition_channel"]


def test_low_risk_customers_get_why_they_are_listed_not_risk_reasons(table):
    features = pd.DataFrame({"complaints_30d": [3.0, 3.0, 3.0]})
    contributions = {"complaints_30d": [1.0, 1.0, 1.0]}
    reasons, top = _explained(
        table, features, contributions, [0.05, 0.05, 0.9], typical={"complaints_30d": 0.0},
        tier=["high", "low", "high"],
    )  # fmt: skip
    assert reasons.loc[0].tolist() == [
        f"high value: CLV 1,234 {CURRENCY}",
        "low churn risk: 5% (typically 40%)",
        "",
    ]
    assert reasons.loc[1, "reason_1"] == f"value at stake: CLV 1,234 {CURRENCY}"
    assert reasons.loc[2, "reason_1"] == "3 complaints in the last 30 days"
    assert top.tolist() == ["", "", "complaints_30d"]


def test_a_feature_without_a_phrase_is_worded_generically_never_with_nan(table):
    features = pd.DataFrame({"gap_probability": [0.934, np.nan, 2.0]})
    reasons, _ = _explained(table, features, {"gap_probability": [0.5, 0.5, 0.5]}, [0.9] * 3)
    assert reasons["reason_1"].tolist()[0] == "gap probability: 0.93"
    assert reasons["reason_1"].tolist()[1].startswith("churn risk 90%")
    assert reasons["reason_1"].tolist()[2] == "gap probability: 2"


def test_covered_features_speak_with_one_phrase(table):
    features = pd.DataFrame(
        {"recency_days": [30.0], "purchase_gap_mean_days": [10.0], "overdue_ratio": [3.0],
         "frequency": [2.0], "btyd_frequency": [1.0]}
    )  # fmt: skip
    contributions = {
        "recency_days": [0.1], "purchase_gap_mean_days": [0.1], "overdue_ratio": [0.1],
        "frequency": [0.25], "btyd_frequency": [0.0],
    }  # fmt: skip
    reasons, _ = _explained(table, features, contributions, [0.9], typical={"frequency": 5.0})
    assert reasons.loc[0].tolist() == [
        "no purchase for 30 days; usually buys every 10 days",  # 0.3 from three features
        "only 2 purchases so far; typically 5 purchases",
        "",
    ]


def test_vectorised_phrases_equal_phrases_row_by_row(table, repository):
    frame = _grid(repository)
    rng = np.random.default_rng(2)
    frame = frame.sample(200, replace=True, random_state=3).reset_index(drop=True)
    for name in ("recency_days", "orders_30d", "frequency", "days_since_first_purchase"):
        frame[name] = rng.choice([0.0, 1.0, 5.0, 40.0, 400.0, 900.0, np.nan], len(frame))
    explainer = Explainer(table, {name: 3.0 for name in frame.columns}, 0.4, CURRENCY)
    for feature in (
        "recency_days", "orders_30d", "web_visits_30d", "spend_90d", "acquisition_channel",
        "survey_score_mean", "days_since_app_login",
    ):  # fmt: skip
        whole = explainer.phrases(feature, frame).tolist()
        one_by_one = [explainer.phrases(feature, frame.iloc[[i]])[0] for i in range(len(frame))]
        assert whole == one_by_one, feature


def test_typical_values_from_the_drift_profile():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "complaints_30d": np.where(rng.random(5000) < 0.7, 0.0, rng.integers(1, 4, 5000)),
            "spend": rng.uniform(0, 100, 5000),
            "days_since_complaint": np.where(rng.random(5000) < 0.8, np.nan, 40.0),
            "region": pd.Categorical(rng.choice(["north", "south"], 5000)),
        }
    )
    typical = typical_from_profile(reference_profile(frame, list(frame.columns)))
    assert typical["complaints_30d"] == 0.0
    assert typical["spend"] == pytest.approx(50.0, abs=2.0)
    assert typical["days_since_complaint"] == 40.0
    assert "region" not in typical
    assert typical_from_frame(frame)["spend"] == pytest.approx(frame["spend"].median())


def test_a_repository_table_replaces_the_packaged_one(tmp_path):
    text = PACKAGED_TABLE.read_text(encoding="utf-8").replace(
        '"{value} in the last {days} days"\n  web_visits',
        '"{value} in den letzten {days} Tagen"\n  web_visits',
    )
    text = text.replace("[complaint, complaints]", "[Beschwerde, Beschwerden]")
    (tmp_path / TABLE_FILE).write_text(text, encoding="utf-8")
    german = phrase_table_for(tmp_path)
    frame = pd.DataFrame({"complaints_30d": [2.0]})
    assert Explainer(german).phrases("complaints_30d", frame)[0] == (
        "2 Beschwerden in den letzten 30 Tagen"
    )
    assert phrase_table_for(tmp_path / "elsewhere").source == str(PACKAGED_TABLE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  recency_days:\n", "  recency_days:\n    colour: red\n"), r"phrases\.recency_days"),
        (("usually buys every {usual}", "usually buys every {usaul}"), r"\{usaul\}"),
        (("rule: overdue", "rule: late"), r"phrases\.recency_days\.rule"),
        (("low_risk_below: 0.5", "low_risk_below: 2"), "low_risk_below"),
    ],
)
def test_a_bad_table_is_refused_naming_file_and_key(tmp_path, change, message):
    text = PACKAGED_TABLE.read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / TABLE_FILE
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_phrase_table(path)
    assert str(path) in str(caught.value)
