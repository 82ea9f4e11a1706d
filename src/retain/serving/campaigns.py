"""The campaign history a list is scored with: the uplift champion, and the data's campaign
log checked against the playbook and the cutoff.

**Uplift.** When a ``retain-uplift`` model is registered, its champion (or the alias or
version ``uplift`` of ``serving/score.yaml`` names) gives the expected effects of the actions
it learned from logged randomised campaigns; without one, the playbook's save rates are the
prior (:mod:`retain.serving.gains`).

**Campaign log.** The data contract checks each row of an optional ``campaigns`` log and that
no customer is in both groups of one campaign (:mod:`retain.data.validation`). Two rules need
what only scoring knows, so :func:`check_campaign_history` adds them before anything is
written: every action must be one of the playbook's (effects of an action retain cannot
recommend cannot be learned or measured), and no campaign may be dated on or after the cutoff
(a list at ``as_of`` would ignore the contacts made since, and its control group would
overlap them; score at a later cutoff). Timestamps are compared by day, as written.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from retain.errors import DataError, DataProblem, RetainError
from retain.serving.config import Playbook, ScoreConfig
from retain.workspace import resolve_path

__all__ = ["UPLIFT_MODEL", "campaign_problems", "check_campaign_history", "load_uplift"]

#: The registered uplift model (trained by ``retain train uplift``).
UPLIFT_MODEL = "retain-uplift"
#: The alias the gate gives; a ``retain-uplift`` without one (no version beat the churn and
#: value-at-risk rankings) is not served, and the playbook's prior scores.
CHAMPION = "champion"
#: Samples shown per problem.
SAMPLES = 5


def load_uplift(alias_or_version: str | None) -> dict[str, Any] | None:
    """The uplift champion when ``retain-uplift`` is registered, else ``None``.

    Returns
    -------
    dict or None
        ``name``, ``version``, ``run_id``, ``actions`` (the model's ``actions_``),
        ``horizon_days`` (the outcome window it learned from; ``None`` when its run does not
        say) and ``model`` (a fitted ``retain.models.uplift.UpliftModel``).

    Raises
    ------
    RetainError
        The model is registered but has no such version, or no such alias other than
        ``champion`` (a ``retain-uplift`` whose versions all failed the gate is not served:
        ``None``).
    """
    if alias_or_version is None:
        return None
    from retain.mlflow import registry

    where = "serving/score.yaml 'uplift'; null scores with the playbook's save rates"
    try:
        version = registry.find_version(UPLIFT_MODEL, alias_or_version)
    except RetainError as error:  # a version number it does not have
        raise RetainError(f"{error} ({where})") from None
    if version is None:
        if str(alias_or_version) == CHAMPION or not registry.is_registered(UPLIFT_MODEL):
            return None  # never registered, or no version passed the gate: the prior scores
        raise RetainError(f"{UPLIFT_MODEL} has no alias {alias_or_version!r} ({where})")
    model = registry.load_model(UPLIFT_MODEL, str(version.version))
    return {
        "name": UPLIFT_MODEL,
        "version": str(version.version),
        "run_id": str(version.run_id),
        "actions": [str(name) for name in model.actions_],
        "horizon_days": _horizon(str(version.run_id)),
        "model": model,
    }


def _horizon(run_id: str) -> int | None:
    """The outcome window the uplift model learned from (its run's ``training_set.json``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        manifest = mlflow.artifacts.load_dict(f"runs:/{run_id}/training_set.json")
    except (MlflowException, OSError):
        return None
    days = manifest.get("horizon_days")
    return int(days) if days is not None else None


def campaign_problems(
    campaigns: pd.DataFrame, playbook: Playbook, as_of: date, file: str
) -> list[DataProblem]:
    """What a campaign log breaks of the two rules of the module docstring.

    Parameters
    ----------
    campaigns : pandas.DataFrame
        ``campaign_id``, ``action`` and ``timestamp`` (parsed; unparseable as missing).
    playbook : Playbook
        The actions retain may recommend.
    as_of : datetime.date
        The list's cutoff.
    file : str
        The log's file, for the messages.
    """
    problems = []
    action = campaigns["action"]
    named = action.notna() & (action.astype(str).str.strip() != "")
    unknown = named & ~action.astype(str).isin(list(playbook.actions))
    if unknown.any():
        problems.append(
            DataProblem(
                "campaigns", file, "action",
                f"actions the playbook ({playbook.source or 'serving/playbook.yaml'}) does not "
                f"know (it knows {', '.join(playbook.actions)}): add them to the playbook or "
                "rename them",
                int(unknown.sum()),
                tuple(pd.unique(action[unknown].astype(str)))[:SAMPLES],
            )
        )  # fmt: skip
    days = pd.to_datetime(campaigns["timestamp"], errors="coerce").dt.normalize()
    late = days.notna() & (days >= pd.Timestamp(as_of))
    if late.any():
        found = (
            campaigns.loc[late, "campaign_id"].astype(str)
            + " on "
            + days[late].dt.strftime("%Y-%m-%d")
        )
        problems.append(
            DataProblem(
                "campaigns", file, "timestamp",
                f"campaigns on or after the cutoff {as_of}: a list at {as_of} would ignore "
                "those contacts and its control group would overlap them; score at a cutoff "
                "after the last campaign (--as-of)",
                int(late.sum()),
                tuple(pd.unique(found))[:SAMPLES],
            )
        )  # fmt: skip
    return problems


def check_campaign_history(
    config: ScoreConfig, data: object, workspace: Path, playbook: Playbook, as_of: date
) -> None:
    """Refuse a data folder whose ``campaigns`` log breaks the rules of the module docstring.

    ``data`` is the ``--data`` folder or ``None`` (the workspace's); data given in memory
    are not checked here. Only the log's file is read.

    Raises
    ------
    DataError
        Naming the file, the column, how many rows and samples.
    """
    from retain.data.files import locate_table, read_table
    from retain.data.mapping import resolve_mapping

    if data is None:
        data = resolve_path(workspace, config.data)
    if not isinstance(data, str | Path) or not Path(data).is_dir():
        return
    mapping = resolve_mapping(resolve_path(workspace, config.mapping) if config.mapping else None)
    spec = mapping.table("campaigns")
    source = locate_table(Path(data), "campaigns", spec)
    if source is None:
        return
    frame = read_table(source, spec)
    renamed = {stored: canonical for canonical, stored in spec.columns.items()}
    frame = frame.rename(columns=renamed)
    if not {"campaign_id", "action", "timestamp"} <= set(frame.columns):
        return  # the data contract names the missing columns when the data are read
    timestamps = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        text = timestamps.astype(str)
        timestamps = pd.to_datetime(text, format=spec.time_format or "ISO8601", errors="coerce")
    if getattr(timestamps.dt, "tz", None) is not None:
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    problems = campaign_problems(
        frame.assign(timestamp=timestamps), playbook, as_of, str(source.path)
    )
    if problems:
        raise DataError(problems)
