"""Whom ``retain score`` scores: the customers active at the cutoff, with their features.

A customer is active at ``as_of`` with a purchase (a positive amount) in the ``active_days``
before it (:func:`retain.training.labels.active_customers`, the population the models were
trained on). With the repository's ``recency_days`` defined as days since the last purchase (the
default), the snapshot already says who that is: ``recency_days <= active_days`` holds exactly
for them, since ``as_of`` is a midnight, so a purchase is at or after ``as_of - active_days``
exactly when its date is, and the feature counts days between dates. Then the population comes
from the snapshot alone, and the transactions need not be read; with any other definition the
active customers are found in the transactions.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from retain.errors import RetainError
from retain.features import FeatureStore, Recency, SourceData, col, get_features
from retain.training.labels import active_customers

__all__ = ["active_population", "recency_is_purchase_recency"]


def active_population(
    sources: SourceData, store: FeatureStore, as_of: date, active_days: int
) -> pd.DataFrame:
    """Features of the customers active at ``as_of`` (the snapshot built first if missing).

    Returns
    -------
    pandas.DataFrame
        Key, ``as_of`` and the features (attributes with a vocabulary as categoricals), in key
        order, indexed ``0..n-1``.

    Raises
    ------
    RetainError
        No customer is active at ``as_of``.
    """
    features = get_features(as_of, store=store, data=sources, as_categorical=True)
    if recency_is_purchase_recency(store):
        population = features[features["recency_days"].le(active_days).to_numpy()]
    else:
        active = active_customers(sources.tables["transactions"], as_of, active_days)
        population = features.merge(active, on=["customer_id", "as_of"], how="inner")
    if population.empty:
        raise RetainError(
            f"no active customers at {as_of} (none bought in the {active_days} days before it)"
        )
    return population.reset_index(drop=True)


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
