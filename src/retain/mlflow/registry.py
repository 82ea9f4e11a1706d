"""The model registry: one registered model per family, aliases ``champion`` and ``challenger``.

A training job registers its model as a new version, which becomes the ``challenger``. The job
then scores the current champion on the *same* validation data and calls :func:`decide`: the
challenger becomes the ``champion`` when there is none yet, or when it beats the champion by more
than a margin; otherwise the champion stays and the reason is recorded on the new version (tag
``promotion_decision``). :func:`promote` moves the champion by hand; serving loads the champion
with :func:`load_model`.

Every function names a model by family (``"churn"``) or full name (``"retain-churn"``) and uses
the process's MLflow registry: pass ``workspace=`` (or call
:func:`retain.mlflow.tracking.use_workspace` first) to choose the workspace's store.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from retain.errors import RetainError
from retain.mlflow import modelfiles
from retain.mlflow.names import MODEL_NAMES, family_of, model_name
from retain.mlflow.tracking import trusted_model_loading, use_workspace

if TYPE_CHECKING:
    from collections.abc import Mapping


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_NAMES",
    "Decision",
    "champion",
    "decide",
    "decide_new_lineage",
    "family_of",
    "find_version",
    "is_registered",
    "lineage_of",
    "list_versions",
    "load_model",
    "model_name",
    "promote",
    "refuse",
    "register",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
DECISION_TAG = "promotion_decision"

_DESCRIPTIONS = {
    "churn": "Probability that an active customer makes no purchase within the horizon.",
    "clv": "Expected customer value (purchases and spend) over the horizon.",
    "segments": "Customer segments from behavioural features.",
    "uplift": "Effect of each retention action on margin and churn over the horizon.",
}
_READY_TIMEOUT_S = 300
VERSION_COLUMNS = [
    "name",
    "version",
    "aliases",
    "created",
    "run_id",
    "primary_metric",
    "score",
    "decision",
    "lineage",
    "definition",
]


# --------------------------------------------------------------------------- names and client


def _client(workspace: str | os.PathLike | None) -> MlflowClient:
    if workspace is not None:
        use_workspace(workspace)
    return MlflowClient()


def _not_found(error: MlflowException) -> bool:
    return error.error_code == "RESOURCE_DOES_NOT_EXIST"


def _registered(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if _not_found(error):
            return None
        raise


def _version_number(version: int | str) -> str:
    text = str(version).strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    if not text.isdigit():
        raise RetainError(f"model version must be a number such as 3 or v3, got {version!r}")
    return str(int(text))


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    found = client.search_model_versions(filter_string=f"name = '{name}'")
    return sorted(found, key=lambda mv: int(mv.version))


def _existing_versions(client: MlflowClient, name: str) -> str:
    versions = _versions(client, name)
    return ", ".join(f"v{mv.version}" for mv in versions) or "none"


def _existing_models(client: MlflowClient) -> str:
    models = [_registered(client, name) for name in MODEL_NAMES.values()]
    listed = [
        f"{model.name} ({_existing_versions(client, model.name)})" for model in models if model
    ]
    return "; ".join(listed) or "none"


# --------------------------------------------------------------------------- registration


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    if _registered(client, name) is not None:
        return
    family = family_of(name)
    try:
        client.create_registered_model(
            name, tags={"retain.family": family}, description=_DESCRIPTIONS[family]
        )
    except MlflowException as error:
        if _registered(client, name) is None:  # not created concurrently either
            raise error


def _source(client: MlflowClient, model_uri: str) -> tuple[str, str | None]:
    """``(source, model_id)`` for a ``models:/m-…`` or ``runs:/<run>/<name>`` URI (MLflow 3)."""
    if model_uri.startswith("models:/m-") and "/" not in model_uri[len("models:/") :].rstrip("/"):
        return model_uri, model_uri[len("models:/") :].rstrip("/")
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri[len("runs:/") :].partition("/")
        run = client.get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs is not None else []
        for output in reversed(outputs):  # the latest model logged under that name
            logged = client.get_logged_model(output.model_id)
            if logged.name == path.strip("/"):
                return f"models:/{logged.model_id}", logged.model_id
    return model_uri, None


def _wait_ready(client: MlflowClient, version: ModelVersion) -> ModelVersion:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
        time.sleep(0.5)
        version = client.get_model_version(version.name, version.version)
    if version.status != "READY":
        raise RetainError(
            f"model {version.name} v{version.version} is {version.status}, not READY: "
            f"{version.status_message or 'no message'}"
        )
    return version


def register(
    model_uri: str,
    family: str,
    run_id: str,
    *,
    primary_metric: str,
    score: float,
    tags: Mapping[str, Any] | None = None,
    workspace: str | os.PathLike | None = None,
) -> ModelVersion:
    """Register a logged model as a new version of the family's model, aliased ``challenger``.

    The registered model is created (with a description) on first use. The version is tagged
    with ``primary_metric``, ``score``, ``run_id`` and ``family``, plus ``tags``.

    Parameters
    ----------
    model_uri : str
        ``ModelInfo.model_uri`` from :func:`retain.mlflow.tracking.log_model`
        (``models:/m-<id>``); ``runs:/<run_id>/<name>`` works too.
    family : str
        ``churn``, ``clv``, ``segments`` or a full name such as ``retain-churn``.
    run_id : str
        The training run that logged the model.
    primary_metric : str
        Name of the metric used to compare versions (e.g. ``roc_auc``).
    score : float
        Its value on the validation data of the run.
    tags : mapping, optional
        More version tags.
    workspace : path-like, optional
        Select this workspace's store first (see :func:`~retain.mlflow.tracking.use_workspace`).

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
        The new version, READY, with its aliases.
    """
    name = model_name(family)
    client = _client(workspace)
    _ensure_registered_model(client, name)
    source, model_id = _source(client, model_uri)
    version_tags = {str(key): str(value) for key, value in (tags or {}).items()}
    version_tags.update(
        family=family_of(name),
        primary_metric=primary_metric,
        score=repr(float(score)),
        run_id=run_id,
    )
    # verified before every load (retain.mlflow.modelfiles)
    version_tags[modelfiles.CHECKSUM_TAG] = modelfiles.checksum_tag(
        modelfiles.model_checksums(source)
    )
    created = client.create_model_version(
        name,
        source,
        run_id=run_id,
        tags=version_tags,
        description=f"{primary_metric} {_fmt(float(score))} on the validation data of run {run_id}",
        model_id=model_id,
    )
    _wait_ready(client, created)
    client.set_registered_model_alias(name, CHALLENGER, created.version)
    return client.get_model_version(name, created.version)


def is_registered(family: str, *, workspace: str | os.PathLike | None = None) -> bool:
    """Whether the family's model (or a full model name) has been registered at all."""
    return _registered(_client(workspace), model_name(family)) is not None


def find_version(
    family: str, alias_or_version: int | str, *, workspace: str | os.PathLike | None = None
) -> ModelVersion | None:
    """The version an alias (``champion``) or a number (``3``, ``"v3"``) names; ``None`` when
    the model is not registered or has no such alias.

    Raises
    ------
    RetainError
        A version number the registered model does not have (naming the versions it has).
    """
    name = model_name(family)
    client = _client(workspace)
    if _registered(client, name) is None:
        return None
    text = str(alias_or_version).strip()
    if text.isdigit() or (text[:1] in ("v", "V") and text[1:].isdigit()):
        return _get_version(client, name, _version_number(text))
    return _by_alias(client, name, text)


def champion(family: str, *, workspace: str | os.PathLike | None = None) -> ModelVersion | None:
    """The version aliased ``champion``, or ``None`` when there is none (or no model at all)."""
    return _by_alias(_client(workspace), model_name(family), CHAMPION)


def _by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    model = _registered(client, name)
    if model is None or alias not in (model.aliases or {}):
        return None
    return client.get_model_version(name, model.aliases[alias])


# --------------------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Decision:
    """Whether a challenger became champion, and why.

    Attributes
    ----------
    family : str
        Model family.
    version : str
        The challenger's version.
    promoted : bool
        Whether the challenger is now the champion.
    reason : str
        One sentence explaining the decision (also the version tag ``promotion_decision``).
    metric : str
        Metric compared.
    challenger_score : float
        Challenger's score on the validation data.
    champion_version : str or None
        The champion at decision time (``None`` when there was none).
    champion_score : float or None
        Its score on the same validation data.
    """

    family: str
    version: str
    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_version: str | None = None
    champion_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, e.g. for :func:`retain.mlflow.tracking.log_json`."""
        return asdict(self)


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Format two scores with 3 decimals, or more when they would otherwise print alike."""
    for digits in range(3, 9):
        left, right = _fmt(a, digits), _fmt(b, digits)
        if left != right:
            break
    return left, right


def _judge(
    metric: str,
    version: str,
    challenger_score: float,
    champion_version: str | None,
    champion_score: float | None,
    higher_is_better: bool,
    min_improvement: float,
) -> tuple[bool, str]:
    if champion_version is None:
        return (
            True,
            f"no champion yet: v{version} becomes champion ({metric} {_fmt(challenger_score)})",
        )
    if champion_version == version:
        return False, f"v{version} is already the champion"
    if not math.isfinite(challenger_score):
        return (
            False,
            f"challenger {metric} is {challenger_score}; champion v{champion_version} stays",
        )
    if champion_score is None:
        return False, (
            f"champion v{champion_version} was not scored on the same validation data, so the "
            f"challenger ({metric} {_fmt(challenger_score)}) cannot be compared; promote it "
            f"by hand if it should replace the champion"
        )
    if not math.isfinite(champion_score):
        return True, (
            f"champion v{champion_version} {metric} is {champion_score} on the same validation "
            f"data; challenger {metric} {_fmt(challenger_score)} replaces it"
        )
    gain = (
        challenger_score - champion_score if higher_is_better else champion_score - challenger_score
    )
    ours, theirs = _fmt_pair(challenger_score, champion_score)
    direction = "" if higher_is_better else " (lower is better)"
    margin = f" by more than {min_improvement:g}" if min_improvement > 0 else ""
    if gain > min_improvement:
        return True, (
            f"challenger {metric} {ours} beats champion v{champion_version} {metric} {theirs}"
            f"{margin} on the same validation data{direction}"
        )
    return False, (
        f"challenger {metric} {ours} does not beat champion v{champion_version} {metric} {theirs}"
        f"{margin} on the same validation data{direction}"
    )


def decide(
    family: str,
    version: int | str,
    *,
    metric: str,
    challenger_score: float,
    champion_score: float | None,
    higher_is_better: bool = True,
    min_improvement: float = 0.0,
    workspace: str | os.PathLike | None = None,
) -> Decision:
    """Promote the challenger ``version`` to champion, or keep the champion and say why.

    The challenger is promoted when there is no champion, or when it beats the champion's score
    by more than ``min_improvement``. Both scores must be measured by the caller on the same
    validation data. A champion that could not be scored (``champion_score=None``) is kept: the
    scores are not comparable. The reason is stored as the version tag ``promotion_decision``
    (and ``promoted``: ``true``/``false``).

    Parameters
    ----------
    family : str
        Family or full model name.
    version : int or str
        The challenger's version (e.g. ``ModelVersion.version``).
    metric : str
        Name of the compared metric, for the reason.
    challenger_score, champion_score : float
        Scores on the same validation data; ``champion_score`` is ignored when there is no
        champion.
    higher_is_better : bool, default=True
        ``False`` for losses and errors.
    min_improvement : float, default=0.0
        Margin the challenger must exceed.
    workspace : path-like, optional
        Select this workspace's store first.

    Returns
    -------
    Decision
    """
    name = model_name(family)
    client = _client(workspace)
    version = _version_number(version)
    _get_version(client, name, version)
    current = _by_alias(client, name, CHAMPION)
    champion_version = str(current.version) if current is not None else None
    promoted, reason = _judge(
        metric,
        version,
        float(challenger_score),
        champion_version,
        None if champion_score is None else float(champion_score),
        higher_is_better,
        float(min_improvement),
    )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, DECISION_TAG, reason)
    client.set_model_version_tag(name, version, "promoted", str(promoted).lower())
    return Decision(
        family=family_of(name),
        version=version,
        promoted=promoted,
        reason=reason,
        metric=metric,
        challenger_score=float(challenger_score),
        champion_version=champion_version,
        champion_score=None if current is None or champion_score is None else float(champion_score),
    )


def decide_new_lineage(
    family: str,
    version: int | str,
    *,
    metric: str,
    challenger_score: float,
    champion_version: str,
    verdict: tuple[bool, str],
    workspace: str | os.PathLike | None = None,
) -> Decision:
    """Decide on the first version of a new lineage (another label definition or feature set
    than the champion's): promoted when it beats the baselines of its own run (``verdict``),
    never compared with the champion, whose scores answer another question.

    Parameters
    ----------
    family : str
        Family or full model name.
    version : int or str
        The challenger's version.
    metric : str
        Its primary metric, for the reason.
    challenger_score : float
        Its score on its validation rows.
    champion_version : str
        The champion of the other lineage.
    verdict : (bool, str)
        Whether it beats the baselines, and the comparison in words.
    workspace : path-like, optional
        Select this workspace's store first.

    Returns
    -------
    Decision
    """
    name = model_name(family)
    client = _client(workspace)
    version = _version_number(version)
    _get_version(client, name, version)
    passed, comparison = verdict
    head = (
        f"first model of a new lineage (another horizon, population or feature set than "
        f"champion v{champion_version}), judged against the baselines on its own validation "
        f"rows: {comparison}"
    )
    reason = f"{head}; v{version} becomes champion" if passed else f"{head}; not promoted"
    if passed:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, DECISION_TAG, reason)
    client.set_model_version_tag(name, version, "promoted", str(passed).lower())
    return Decision(
        family=family_of(name), version=version, promoted=passed, reason=reason, metric=metric,
        challenger_score=float(challenger_score), champion_version=champion_version,
    )  # fmt: skip


def refuse(
    family: str,
    version: int | str,
    *,
    metric: str,
    challenger_score: float,
    verdict: str,
    workspace: str | os.PathLike | None = None,
) -> Decision:
    """Keep the challenger ``version`` from champion because it does not beat the baselines of
    its own run (``verdict`` says how), whatever the champion's score: a gate some families
    (uplift: ranking by churn probability and by value at risk) put before the comparison.

    Returns
    -------
    Decision
        Not promoted, with the reason stored as the version tag ``promotion_decision``.
    """
    name = model_name(family)
    client = _client(workspace)
    version = _version_number(version)
    _get_version(client, name, version)
    current = _by_alias(client, name, CHAMPION)
    reason = f"v{version} does not beat the baselines of its run ({verdict}); not promoted"
    client.set_model_version_tag(name, version, DECISION_TAG, reason)
    client.set_model_version_tag(name, version, "promoted", "false")
    return Decision(
        family=family_of(name), version=version, promoted=False, reason=reason, metric=metric,
        challenger_score=float(challenger_score),
        champion_version=str(current.version) if current is not None else None,
    )  # fmt: skip


def lineage_of(version: ModelVersion) -> str | None:
    """The lineage of a registered version: its tag, or for versions registered before
    lineages were recorded, computed from its run's training-set manifest and config."""
    tags = version.tags or {}
    if tags.get("lineage"):
        return tags["lineage"]
    return _run_lineage(str(version.run_id), family_of(version.name))[0]


def _run_lineage(run_id: str, family: str) -> tuple[str | None, str]:
    """``(lineage, definition in words)`` computed from a run's logged manifest."""
    from retain.mlflow.lineage import definition, describe_definition, lineage_id

    try:
        manifest = mlflow.artifacts.load_dict(f"runs:/{run_id}/training_set.json")
        params = MlflowClient().get_run(run_id).data.params
    except (MlflowException, OSError):
        return None, ""
    label = {"margin_rate": float(params["margin_rate"])} if family == "clv" else {}
    if family == "clv" and "margin_rate" not in params:
        return None, ""
    found = definition(family, manifest, **label)
    return lineage_id(found), describe_definition(found)


def _get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    if _registered(client, name) is None:
        raise RetainError(
            f"no registered model {name} in {mlflow.get_registry_uri()}; registered models: "
            f"{_existing_models(client)}"
        )
    try:
        return client.get_model_version(name, version)
    except MlflowException as error:
        if not _not_found(error):
            raise
    raise RetainError(
        f"model {name} has no version {version}; versions: {_existing_versions(client, name)}"
    )


def promote(
    family_or_name: str, version: int | str, *, workspace: str | os.PathLike | None = None
) -> ModelVersion:
    """Make ``version`` the champion by hand (e.g. ``retain models promote churn 3``).

    Raises
    ------
    RetainError
        Unknown model or version; the message lists what exists.
    """
    client = _client(workspace)
    try:
        name = model_name(family_or_name)
    except RetainError as error:
        raise RetainError(f"{error}; registered: {_existing_models(client)}") from None
    version = _version_number(version)
    _get_version(client, name, version)
    previous = _by_alias(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, version)
    was = f"v{previous.version}" if previous is not None else "none"
    client.set_model_version_tag(
        name, version, DECISION_TAG, f"promoted by hand (champion was {was})"
    )
    client.set_model_version_tag(name, version, "promoted", "true")
    return client.get_model_version(name, version)


# --------------------------------------------------------------------------- loading and listing


def load_model(
    family: str,
    alias_or_version: int | str = CHAMPION,
    *,
    workspace: str | os.PathLike | None = None,
) -> Any:
    """Load a registered model as its Python object (``mlflow.sklearn.load_model``), from a
    copy of its files verified against the checksums recorded at registration.

    Parameters
    ----------
    family : str
        Family or full model name.
    alias_or_version : str or int, default="champion"
        An alias (``champion``, ``challenger``) or a version number (``3`` or ``"v3"``).
    workspace : path-like, optional
        Select this workspace's store first.

    Raises
    ------
    RetainError
        No such alias or version; for a missing champion the message names the command that
        trains one (``retain train <family>``).
    ModelFileError
        The registry is not trusted, or the model's files differ from the checksums recorded
        at registration (nothing is unpickled then).
    """
    import mlflow.sklearn

    name = model_name(family)
    client = _client(workspace)
    text = str(alias_or_version).strip()
    if text.isdigit() or (text[:1] in ("v", "V") and text[1:].isdigit()):
        version = _version_number(text)
        _get_version(client, name, version)
        uri = f"models:/{name}/{version}"
    else:
        if _by_alias(client, name, text) is None:
            raise RetainError(
                f"no {text} model {name} in {mlflow.get_registry_uri()}; train one with "
                f"`retain train {family_of(name)}`"
            )
        uri = f"models:/{name}@{text}"
    modelfiles.check_trusted(mlflow.get_registry_uri())
    version_info = _resolved(client, name, text)
    label = f"{name} v{version_info.version}"
    retrain = f"retain train {family_of(name)}"
    tags = version_info.tags or {}
    with (
        modelfiles.verified_copy(uri, tags, label=label, retrain=retrain) as local,
        trusted_model_loading(),
    ):
        return mlflow.sklearn.load_model(str(local))


def _resolved(client: MlflowClient, name: str, alias_or_version: str) -> ModelVersion:
    """The version an alias or number names (its tags hold the recorded checksums)."""
    if alias_or_version.isdigit() or alias_or_version[:1] in ("v", "V"):
        return client.get_model_version(name, _version_number(alias_or_version))
    return client.get_model_version_by_alias(name, alias_or_version)


def list_versions(
    family: str | None = None, *, workspace: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Registered versions of one family's model, or of all of them.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``version`` (int), ``aliases`` (comma separated), ``created``
        (UTC, naive), ``run_id``, ``primary_metric``, ``score`` (float), ``decision``; sorted
        by name, newest version first.
    """
    client = _client(workspace)
    names = [model_name(family)] if family is not None else list(MODEL_NAMES.values())
    rows = []
    for name in names:
        model = _registered(client, name)
        if model is None:
            continue
        # search results carry no aliases (MLflow 3, sqlite): take them from the model
        aliases: dict[str, list[str]] = {}
        for alias, version in sorted((model.aliases or {}).items()):
            aliases.setdefault(str(version), []).append(alias)
        for mv in _versions(client, name):
            tags = mv.tags or {}
            rows.append(
                {
                    "name": mv.name,
                    "version": int(mv.version),
                    "aliases": ", ".join(aliases.get(str(mv.version), [])),
                    "created": pd.Timestamp(mv.creation_timestamp, unit="ms"),
                    "run_id": mv.run_id or tags.get("run_id", ""),
                    "primary_metric": tags.get("primary_metric", ""),
                    "score": float(tags["score"]) if "score" in tags else float("nan"),
                    "decision": tags.get(DECISION_TAG, ""),
                    **_lineage_columns(mv),
                }
            )
    if not rows:
        frame = pd.DataFrame({column: pd.Series(dtype=object) for column in VERSION_COLUMNS})
        return frame.astype({"version": "int64", "score": "float64", "created": "datetime64[ms]"})
    frame = pd.DataFrame(rows, columns=VERSION_COLUMNS)
    return frame.sort_values(["name", "version"], ascending=[True, False], ignore_index=True)


def _lineage_columns(version: ModelVersion) -> dict[str, str]:
    tags = version.tags or {}
    if tags.get("lineage"):
        return {"lineage": tags["lineage"], "definition": tags.get("definition", "")}
    lineage, described = _run_lineage(str(version.run_id), family_of(version.name))
    return {"lineage": lineage or "", "definition": described}
