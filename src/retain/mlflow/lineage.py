"""Model lineages: versions that predict the same thing from the same features.

A model's *definition* is what its scores mean: the label (horizon, the population of active
customers, the rule that turns the label window into a label) and the feature set it reads
(names and view versions). Versions with one definition form a lineage, and only they can be
compared on the same validation rows: a 91-day churn model is not better or worse than a 90-day
one, it answers another question. So the champion gate compares a challenger with the champion
only within a lineage; the first model of a new lineage is judged against the baselines of its
own run instead (see :mod:`retain.training.publish`).

Scoring checks the champion's definition against the current configs the same way, and refuses
to serve a model whose horizon or population is not the one asked for
(:func:`check_served_definition`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from retain.errors import RetainError

__all__ = [
    "LABEL_RULES",
    "DefinitionMismatchError",
    "check_served_definition",
    "definition",
    "describe_definition",
    "lineage_id",
]

#: The label rule of each family, versioned: a new rule is a new lineage.
LABEL_RULES = {
    "churn": "no purchase in [as_of, as_of + horizon) among customers with a purchase in the "
    "active_days before as_of (v1)",
    "clv": "net margin in [as_of, as_of + horizon) of customers with a purchase in the "
    "active_days before as_of (v1)",
    "segments": "customers with a purchase in the active_days before as_of (v1)",
    "uplift": "effect of each campaign action on net margin and on no purchase in [as_of, "
    "as_of + horizon) of the enrolled customers with a purchase in the active_days before "
    "as_of, the campaign's first day (v1)",
}


class DefinitionMismatchError(RetainError):
    """A model's definition (horizon, population) is not the one the current config asks for."""


def definition(family: str, manifest: Mapping[str, Any], **label: Any) -> dict[str, Any]:
    """The definition of a model trained on the training set ``manifest`` describes.

    Parameters
    ----------
    family : str
        ``churn``, ``clv`` or ``segments``.
    manifest : mapping
        The training-set manifest (``training_set.json`` of the run): ``horizon_days``,
        ``active_days``, ``features`` and ``feature_views``.
    **label
        More settings that change the label (e.g. the CLV ``margin_rate``).

    Returns
    -------
    dict
        JSON-ready: family, rule, horizon, population, label settings, features and a hash
        of the feature set.
    """
    features = sorted(manifest.get("features", []))
    views = dict(sorted(dict(manifest.get("feature_views", {})).items()))
    feature_set = json.dumps({"features": features, "views": views}, sort_keys=True)
    return {
        "family": family,
        "rule": LABEL_RULES.get(family, ""),
        "horizon_days": manifest.get("horizon_days"),
        "active_days": manifest.get("active_days"),
        **{key: label[key] for key in sorted(label)},
        "feature_set": hashlib.sha256(feature_set.encode()).hexdigest()[:12],
    }


def lineage_id(model_definition: Mapping[str, Any]) -> str:
    """A short, stable id of a definition (equal definitions, equal ids)."""
    text = json.dumps(dict(model_definition), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe_definition(model_definition: Mapping[str, Any]) -> str:
    """A definition in a few words, e.g. ``horizon 90d, active 365d, features 1a2b3c4d5e6f``."""
    parts = []
    if model_definition.get("horizon_days"):
        parts.append(f"horizon {model_definition['horizon_days']}d")
    parts.append(f"active {model_definition.get('active_days')}d")
    extra = sorted(
        key for key in model_definition
        if key not in ("family", "rule", "horizon_days", "active_days", "feature_set")
    )  # fmt: skip
    parts += [f"{key} {model_definition[key]}" for key in extra]
    parts.append(f"features {model_definition.get('feature_set')}")
    return ", ".join(parts)


def check_served_definition(
    name: str,
    version: str,
    manifest: Mapping[str, Any],
    *,
    horizon_days: int | None,
    active_days: int,
    horizon_source: str,
    active_source: str,
) -> None:
    """Refuse to serve a model trained for another horizon or population than asked for.

    Parameters
    ----------
    name, version : str
        The registered model (for the message).
    manifest : mapping
        Its training-set manifest.
    horizon_days : int or None
        The horizon the current config asks for (``None``: a family without one).
    active_days : int
        The population the current config asks for.
    horizon_source, active_source : str
        Where those settings come from (e.g. ``training/churn.yaml``), for the message.

    Raises
    ------
    DefinitionMismatchError
        Naming both definitions and what to do.
    """
    trained_horizon, trained_active = manifest.get("horizon_days"), manifest.get("active_days")
    problems = []
    if horizon_days is not None and trained_horizon is not None and trained_horizon != horizon_days:
        problems.append(
            f"horizon_days {trained_horizon} (the config asks {horizon_days}, {horizon_source})"
        )
    if trained_active is not None and trained_active != active_days:
        problems.append(
            f"active_days {trained_active} (the config asks {active_days}, {active_source})"
        )
    if problems:
        raise DefinitionMismatchError(
            f"{name} v{version} was trained for {' and '.join(problems)}; its scores would "
            "not mean what the list says. Retrain with the current config (`retain train`), "
            "or set the config back to the model's definition"
        )
