"""Names of the registered models: one per family, ``retain-<family>``."""

from __future__ import annotations

from retain.errors import RetainError

__all__ = ["MODEL_NAMES", "family_of", "model_name"]

MODEL_NAMES = {
    "churn": "retain-churn",
    "clv": "retain-clv",
    "segments": "retain-segments",
    "uplift": "retain-uplift",
}


def model_name(family_or_name: str) -> str:
    """``retain-<family>`` for a family or a full name; :class:`RetainError` for anything else."""
    if family_or_name in MODEL_NAMES:
        return MODEL_NAMES[family_or_name]
    if family_or_name in MODEL_NAMES.values():
        return family_or_name
    known = ", ".join(f"{family} ({name})" for family, name in MODEL_NAMES.items())
    raise RetainError(f"unknown model {family_or_name!r}; known models: {known}")


def family_of(family_or_name: str) -> str:
    """The family (``churn``) of a family or full model name."""
    name = model_name(family_or_name)
    return next(family for family, full in MODEL_NAMES.items() if full == name)
