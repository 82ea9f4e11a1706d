"""Whom ``retain score`` scores: the customers active at the cutoff, with their features.

A customer is active at ``as_of`` with a purchase (a positive amount) in the ``active_days``
before it (:func:`retain.engines.rules.active_customers`, the population the models were
trained on). With the repository's ``recency_days`` defined as days since the last purchase (the
default), the snapshot already says who that is: ``recency_days <= active_days`` holds exactly
for them, since ``as_of`` is a midnight, so a purchase is at or after ``as_of - active_days``
exactly when its date is, and the feature counts days between dates. Then the population comes
from the snapshot alone, and the transactions need not be read; with any other definition the
active customers are found in the transactions (:func:`retain.engines.rules.population`).
"""

from __future__ import annotations

from datetime import date

from retain.engines import Engine, Rows
from retain.features import FeatureStore, Recency, SourceData, col

__all__ = ["active_population", "recency_is_purchase_recency"]


def active_population(
    engine: Engine, sources: SourceData, store: FeatureStore, as_of: date, active_days: int
) -> Rows:
    """The snapshot at ``as_of`` (built first on ``engine`` if missing), only the customers
    active at ``as_of``, as rows of ``engine``: the key, ``as_of`` and every feature of the
    repository, in key order (plain columns: attributes are made categorical where the rows
    are used, see :func:`retain.features.categorical`)."""
    [built] = store.build(sources, [as_of], engine=engine)
    columns = [store.key, "as_of", *store.repository.feature_names]
    if recency_is_purchase_recency(store):
        return engine.population(built.path, columns, active_days=active_days)
    return engine.population(
        built.path, columns, active_days=active_days, sources=sources, as_of=as_of
    )


def recency_is_purchase_recency(store: FeatureStore) -> bool:
    """Whether ``recency_days`` counts the days since the last purchase (a positive amount).

    Then ``recency_days <= active_days`` holds exactly for the customers with a purchase in
    ``[as_of - active_days, as_of)``: ``as_of`` is a midnight, so a timestamp is at or after
    ``as_of - active_days`` exactly when its date is, and the feature counts days between dates.
    """
    expected = Recency("recency_days", where=col("amount") > 0).spec()
    for view in store.repository.views:
        for feature in view.features:
            if "recency_days" in feature.outputs:
                return (
                    view.source == "transactions"
                    and view.event_time == "timestamp"
                    and feature.spec() == expected
                )
    return False
