"""Reasons in plain words: the strongest contributions towards churn, with the customer's numbers.

Each customer's contributions (log-odds scale, from the churn model) are ranked; the features
pushing *towards* churn most become phrases such as "no purchase for 94 days; usually buys every
21". Features that describe the same thing (the recency and the usual gap) share one phrase, so
three reasons say three different things.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["phrase", "phrases", "reason_features", "top_reasons"]

# Features folded into one phrase: the first name of each group speaks for the others.
GROUPS = (
    ("recency_days", "purchase_gap_mean_days", "overdue_ratio", "btyd_recency", "btyd_T"),
    ("frequency", "btyd_frequency"),
    ("monetary_mean", "btyd_monetary_value"),
)
GROUP_OF = {name: group[0] for group in GROUPS for name in group}

LABELS = {
    "support_tickets": "support tickets",
    "complaints": "complaints",
    "web_visits": "web visits",
    "app_logins": "app logins",
    "email_opens": "email opens",
    "email_clicks": "email clicks",
    "campaign_contacts": "campaign contacts",
    "orders": "orders",
    "spend": "spend",
}
EVENTS = {
    "support_ticket": "support ticket",
    "complaint": "complaint",
    "web_visit": "web visit",
    "app_login": "app login",
    "email_open": "email opened",
    "email_click": "email clicked",
    "campaign_contact": "campaign contact",
    "survey": "survey answered",
}


def _number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def _recency(row: Mapping) -> str:
    days, gap = row.get("recency_days"), row.get("purchase_gap_mean_days")
    if not _known(days):
        return "no purchase yet"
    text = f"no purchase for {_number(days)} days"
    if _known(gap) and gap > 0:
        text += f"; usually buys every {_number(gap)}"
    return text


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


SPECIAL: dict[str, Callable[[Mapping], str]] = {
    "recency_days": _recency,
    "frequency": lambda row: f"{_number(row['frequency'])} purchases in total",
    "monetary_total": lambda row: f"net spend to date {_number(row['monetary_total'], 2)}",
    "monetary_mean": lambda row: f"average order {_number(row['monetary_mean'], 2)}",
    "return_share": lambda row: f"returns {row['return_share']:.0%} of orders",
    "returns_count": lambda row: f"{_number(row['returns_count'])} returns",
    "spend_trend_90d": lambda row: (
        "no spend in the previous 90 days to compare"
        if not _known(row["spend_trend_90d"])
        else f"spend in the last 90 days at {row['spend_trend_90d']:.0%} of the 90 before"
    ),
    "survey_score_mean": lambda row: (
        "no survey answer"
        if not _known(row["survey_score_mean"])
        else f"survey score {row['survey_score_mean']:.1f}"
    ),  # fmt: skip
    "days_since_first_purchase": lambda row: (
        f"first purchase {_number(row['days_since_first_purchase'])} days ago"
    ),
    "tenure_days": lambda row: f"customer for {_number(row['tenure_days'])} days",
    "purchase_gap_std_days": lambda row: (
        f"irregular buying: gaps vary by about {_number(row['purchase_gap_std_days'])} days"
    ),
    "distinct_categories": lambda row: f"buys in {_number(row['distinct_categories'])} categories",
    "distinct_channels": lambda row: f"buys through {_number(row['distinct_channels'])} channels",
    "acquisition_channel": lambda row: f"acquired through {row['acquisition_channel']}",
    "acquisition_cost": lambda row: f"acquisition cost {_number(row['acquisition_cost'], 2)}",
    "region": lambda row: f"region {row['region']}",
}
WINDOW = re.compile(r"^(?P<what>[a-z_]+)_(?P<days>\d+)d$")
SINCE = re.compile(r"^days_since_(?P<what>[a-z_]+)$")


NEEDS = {"recency_days": ("recency_days", "purchase_gap_mean_days")}


def phrase(feature: str, row: dict) -> str:
    """The customer's value of ``feature`` in plain words (``row`` maps feature names to values)."""
    if feature in SPECIAL:
        return SPECIAL[feature](row)
    value = row.get(feature)
    if (match := WINDOW.match(feature)) is not None:
        what, days = match["what"], match["days"]
        label = LABELS.get(what, what.replace("_", " "))
        amount = _number(value, 2 if what == "spend" else 0) if _known(value) and value else "no"
        return f"{amount} {label} in the last {days} days"
    if (match := SINCE.match(feature)) is not None:
        event = EVENTS.get(match["what"], match["what"].replace("_", " "))
        return f"no {event} yet" if not _known(value) else f"last {event} {_number(value)} days ago"
    shown = _number(value, 2) if isinstance(value, int | float) and _known(value) else value
    return f"{feature.replace('_', ' ')} {shown}"


def phrases(feature: str, features: pd.DataFrame) -> list[str]:
    """:func:`phrase` of ``feature`` for every row of ``features`` (reading only what it needs)."""
    needed = [name for name in NEEDS.get(feature, (feature,)) if name in features.columns]
    columns = [features[name].astype(object).to_numpy() for name in needed]
    rows = zip(*columns, strict=True)
    return [phrase(feature, dict(zip(needed, values, strict=True))) for values in rows]


def reason_features(contributions: pd.DataFrame, count: int = 3) -> np.ndarray:
    """Per row, up to ``count`` features pushing towards churn, strongest first, one per group.

    Contributions of features in one group (e.g. recency and the usual purchase gap) are added
    up and the group speaks with its first feature's phrase. Returns an object array of shape
    ``(rows, count)`` holding feature names, ``""`` where fewer features push towards churn.
    """
    shap = contributions.drop(columns=["bias"], errors="ignore")
    groups = [GROUP_OF.get(name, name) for name in shap.columns]
    grouped = shap.T.groupby(groups, sort=False).sum().T
    names = grouped.columns.to_numpy(dtype=object)
    values = grouped.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :count]
    chosen = names[order]
    towards_churn = np.take_along_axis(values, order, axis=1) > 0
    return np.where(towards_churn, chosen, "")


def top_reasons(
    contributions: pd.DataFrame, features: pd.DataFrame, count: int = 3
) -> tuple[pd.DataFrame, pd.Series]:
    """``reason_1 .. reason_<count>`` phrases and the feature behind each first reason.

    Parameters
    ----------
    contributions : DataFrame
        SHAP contributions towards churn (log-odds), one column per feature plus ``bias``.
    features : DataFrame
        The customers' feature values, indexed like ``contributions``.
    count : int, default=3
        Reasons per customer; missing ones are empty strings.
    """
    chosen = reason_features(contributions, count)
    reasons = {}
    for k in range(chosen.shape[1]):
        texts = np.full(len(features), "", dtype=object)
        for feature in pd.unique(chosen[:, k]):
            if feature:
                rows = np.flatnonzero(chosen[:, k] == feature)
                texts[rows] = phrases(feature, features.iloc[rows])
        reasons[f"reason_{k + 1}"] = texts
    for k in range(chosen.shape[1], count):
        reasons[f"reason_{k + 1}"] = np.full(len(features), "", dtype=object)
    frame = pd.DataFrame(reasons, index=features.index)
    return frame, pd.Series(chosen[:, 0] if count else "", index=features.index)
