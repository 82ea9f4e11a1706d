"""Feature definitions fail at load time, naming the view and feature; versions are stable."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from retain.errors import ConfigError
from retain.features import (
    Attribute,
    BTYDSummary,
    Entity,
    FeatureView,
    GapStatistics,
    Ratio,
    Recency,
    Tenure,
    Trend,
    WindowAggregate,
    check_views,
    col,
    load_repository,
)
from test_features_values import REPO

customer = Entity("customer")


def view(*features, source="transactions", name="orders", **options) -> FeatureView:
    return FeatureView(name, customer, source, features=list(features), **options)


def problems_of(*views: FeatureView) -> str:
    with pytest.raises(ConfigError) as caught:
        check_views(list(views))
    return str(caught.value)


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (WindowAggregate("spend", "sum", "amout"), "unknown column 'amout'.*did you mean 'amount'"),
        (WindowAggregate("spend", "total", "amount"), "unknown aggregation 'total'"),
        (WindowAggregate("spend", "summ", "amount"), "did you mean 'sum'"),
        (WindowAggregate("spend", "sum", "category"), "column 'category' is text, expected number"),
        (WindowAggregate("spend", "sum"), "aggregation 'sum' needs a column"),
        (WindowAggregate("spend", "count", window_days=0), "positive whole number of days"),
        (WindowAggregate("spend", "count", where=col("kind") == "x"), "unknown column 'kind'"),
        (WindowAggregate("spend", "count", where=col("amount") < "0"), "number column 'amount'"),
        (Recency("spend", where=col("channel") == 3), "text column 'channel'"),
        (Trend("spend", "max", "amount"), "count, sum, mean or count_distinct"),
        (Trend("spend", "sum", "amount", method="log"), "method must be"),
        (Ratio("spend", "orders", "visits"), "numerator 'orders' is not"),
        (Attribute("spend", "region"), "attributes come from the static 'customers' source"),
        (Tenure("spend", column="timestamp"), "leave column unset"),
        (BTYDSummary(column="value"), "unknown column 'value'"),
        (WindowAggregate("as_of", "count"), "feature name 'as_of' is reserved"),
        (WindowAggregate("has space", "count"), "not a valid identifier"),
    ],
)
def test_a_bad_feature_is_reported_with_its_view_and_name(feature, expected):
    message = problems_of(view(feature))
    assert f"view 'orders', feature '{feature.label}'" in message
    assert __import__("re").search(expected, message), message


def test_bad_views_are_reported():
    assert "unknown source 'transaction'" in problems_of(view(Recency("r"), source="transaction"))
    assert "did you mean 'transactions'" in problems_of(view(Recency("r"), source="transaction"))
    static = view(WindowAggregate("n", "count"), source="customers", name="profile")
    assert "window_aggregate needs events" in problems_of(static)
    assert "at least one feature" in problems_of(view())
    assert "no time column" in problems_of(view(Recency("r"), timestamp_field="amount"))
    assert "a tenure on a static source needs a date column" in problems_of(
        view(Tenure("t"), source="customers", name="profile")
    )


def test_every_problem_is_listed_at_once():
    message = problems_of(
        view(WindowAggregate("a", "sum", "amout"), WindowAggregate("b", "avg", "amount"))
    )
    assert "feature 'a'" in message and "feature 'b'" in message


def test_duplicate_names_are_refused():
    first = view(Recency("recency"), name="one")
    second = view(WindowAggregate("recency", "count"), name="two")
    assert "feature 'recency' is defined more than once (views ['one', 'two'])" in problems_of(
        first, second
    )
    assert "view name 'one' is defined 2 times" in problems_of(first, replace(second, name="one"))
    gaps = view(GapStatistics(), GapStatistics(overdue="late"))
    assert "feature 'gap_mean_days' is defined more than once" in problems_of(gaps)


def test_a_bad_repository_fails_when_loaded(tmp_path):
    (tmp_path / "good.py").write_text(
        "from retain.features import Entity, FeatureView, Recency\n"
        "v = FeatureView('good', Entity('customer'), 'transactions', [Recency('r')])\n"
    )
    (tmp_path / "bad.py").write_text(
        textwrap.dedent(
            """
            from retain.features import Entity, FeatureView, WindowAggregate
            v = FeatureView('bad', Entity('customer'), 'interactions',
                            [WindowAggregate('visits', 'count', where=None, column='typ')])
            """
        )
    )
    with pytest.raises(ConfigError, match=r"view 'bad', feature 'visits': unknown column 'typ'"):
        load_repository(tmp_path)
    (tmp_path / "bad.py").write_text("def broken(:\n")
    with pytest.raises(ConfigError, match=r"bad.py: SyntaxError"):
        load_repository(tmp_path)
    (tmp_path / "bad.py").unlink()
    assert [v.name for v in load_repository(tmp_path).views] == ["good"]
    with pytest.raises(ConfigError, match="no feature repository"):
        load_repository(tmp_path / "missing")


def test_the_default_repository_loads():
    repository = load_repository(REPO)
    assert {v.name for v in repository.views} == {
        "customer_profile", "customer_profit", "engagement", "purchases", "service_costs"
    }  # fmt: skip
    assert len(repository.feature_names) == len(set(repository.feature_names)) > 40
    assert {"btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value"} <= set(
        repository.feature_names
    )


def test_versions_change_exactly_when_the_definition_does():
    base = view(
        WindowAggregate("returns", "count", window_days=90, where=col("amount") < 0),
        WindowAggregate("web", "count", where=col("channel").isin(["web", "app"])),
        description="one",
    )
    same = view(
        WindowAggregate("returns", "count", window_days=90, where=col("amount") < 0),
        WindowAggregate("web", "count", where=col("channel").isin(["app", "web"])),
        description="another description",
    )
    assert base.version == same.version and len(base.version) == 12
    changes = [
        view(WindowAggregate("returns", "count", window_days=30, where=col("amount") < 0),
             base.features[1]),
        view(WindowAggregate("returns", "count", window_days=90, where=col("amount") <= 0),
             base.features[1]),
        view(WindowAggregate("returns", "count", window_days=90), base.features[1]),
        view(*base.features, name="renamed"),
        view(*reversed(base.features)),
    ]  # fmt: skip
    assert len({base.version, *(changed.version for changed in changes)}) == len(changes) + 1


def test_versions_do_not_depend_on_the_process():
    # pinned: a change here means every stored snapshot is rebuilt
    pinned = view(Recency("recency_days", where=col("amount") > 0))
    assert pinned.spec() == {
        "name": "orders",
        "entity": {"name": "customer", "join_key": "customer_id"},
        "source": "transactions",
        "timestamp_field": None,
        "features": [{"kind": "recency", "name": "recency_days", "where": [">", "amount", 0]}],
    }
    assert pinned.version == "0e6c12a7d5a9"


def test_filters_refuse_python_boolean_logic():
    with pytest.raises(TypeError, match="use & | ~"):
        (col("amount") > 0) and (col("amount") < 10)
    with pytest.raises(TypeError, match="literal"):
        col("amount") > [1]  # noqa: B015
