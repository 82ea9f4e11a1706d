"""MLflow tracking for the training jobs: one workspace store, one experiment per family.

Where runs go
-------------
Unless ``MLFLOW_TRACKING_URI`` is set, a workspace owns its store: the sqlite database
``<workspace>/mlruns/mlflow.db`` and the artifacts under ``<workspace>/mlruns/artifacts/<family>``.
Each model family (``churn``, ``clv``, ``segments``, ``scoring``) has the experiment
``retain-<family>``.

Typical use in a training job::

    with training_run("churn", workspace, run_name="weekly") as run:
        log_params_flat(config_dict)
        log_metrics_prefixed(metrics, "valid")
        info = log_model(model, X_valid.head(5), predict_method="predict_proba")
        # then retain.mlflow.registry.register(info.model_uri, "churn", run.info.run_id, ...)

Tuning trials are nested runs: ``with child_run(f"trial-{n}", params): ...`` inside the parent
run (or pass ``parent_run_id=`` from worker threads, which do not share MLflow's active run).
``mlflow.start_run(nested=True, experiment_id=parent.info.experiment_id)`` works as well.

MLflow 3 notes
--------------
* ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into ``os.environ`` (so that
  subprocesses inherit it). This module remembers the URIs it derived itself, so that such a
  value is not mistaken for a user's override when another workspace is selected later.
* Models are serialised with cloudpickle: MLflow 3's default, skops, refuses even a plain
  scikit-learn pipeline without a hand-made list of trusted types. Loading any serialised
  model requires ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``; :func:`trusted_model_loading`
  sets it for the duration of a load of the workspace's own models.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.errors import ConfigError, RetainError
from retain.mlflow.names import model_name
from retain.mlflow.relocation import relocate_store

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.entities import Run
    from mlflow.models.model import ModelInfo

__all__ = [
    "EXPERIMENT_PREFIX",
    "FAMILIES",
    "PYFUNC_METHODS",
    "child_run",
    "ensure_experiment",
    "experiment_name",
    "flatten",
    "job_clock",
    "job_started",
    "log_figure",
    "log_frame",
    "log_json",
    "log_metrics_prefixed",
    "log_model",
    "log_params_flat",
    "runtime_requirements",
    "tracking_uri",
    "training_run",
    "trusted_model_loading",
    "ui_command",
    "use_workspace",
]

#: Model families that have an experiment of their own.
FAMILIES = ("churn", "clv", "segments", "uplift", "scoring")
EXPERIMENT_PREFIX = "retain-"
#: Prediction methods MLflow's pyfunc flavour can call on a scikit-learn model.
PYFUNC_METHODS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba")

_TRACKING_ENV = "MLFLOW_TRACKING_URI"
_REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
_PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
_STORE_DIR = "mlruns"
_DB_FILE = "mlflow.db"
_BATCH = 100  # MLflow's limit of params or tags per batch request
_EXAMPLE_ROWS = 5

try:  # MLflow's own limits, with the values of MLflow 3 as a fallback
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH
except ImportError:  # pragma: no cover - depends on MLflow internals
    MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH = 6000, 8000

# URIs this process derived from a workspace and handed to MLflow (which copies them into
# os.environ): an environment variable holding one of them is ours, not a user's override.
_derived_tracking: set[str] = set()
_set_registry: set[str] = set()
_initialised: set[str] = set()
_lock = threading.Lock()


# --------------------------------------------------------------------------- workspace and store


def _default_uri(workspace: str | os.PathLike) -> str:
    db = Path(workspace).resolve() / _STORE_DIR / _DB_FILE
    return f"sqlite:///{db.as_posix()}"


def _env(name: str, ours: set[str]) -> str | None:
    value = os.environ.get(name, "").strip()
    return value if value and value not in ours else None


def tracking_uri(workspace: str | os.PathLike = ".") -> str:
    """The MLflow tracking URI for ``workspace``.

    Parameters
    ----------
    workspace : path-like, default="."
        Folder holding ``mlruns/``.

    Returns
    -------
    str
        ``MLFLOW_TRACKING_URI`` when the user set it; otherwise
        ``sqlite:///<absolute workspace>/mlruns/mlflow.db`` (the ``mlruns`` folder is created).
    """
    override = _env(_TRACKING_ENV, _derived_tracking)
    if override is not None:
        return override
    uri = _default_uri(workspace)
    (Path(workspace).resolve() / _STORE_DIR).mkdir(parents=True, exist_ok=True)
    return uri


def _owns_store(uri: str, workspace: str | os.PathLike) -> bool:
    """Whether ``uri`` is the workspace's own sqlite store (artifacts then live beside it)."""
    return uri == _default_uri(workspace)


def _quiet_mlflow() -> None:
    """Drop MLflow's INFO chatter on first use of a store; warnings still show."""
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.INFO):
            logger.setLevel(logging.WARNING)
    sklearn_logger = logging.getLogger("mlflow.sklearn")
    if not any(isinstance(f, _PickleNoticeFilter) for f in sklearn_logger.filters):
        sklearn_logger.addFilter(_PickleNoticeFilter())


class _PickleNoticeFilter(logging.Filter):
    """Hide MLflow's per-model notice that cloudpickle is used: we chose it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Saving scikit-learn models in the pickle")


def use_workspace(workspace: str | os.PathLike = ".") -> str:
    """Point this process's MLflow tracking and model registry at ``workspace``.

    Cheap to call repeatedly: once the URIs are set and the store exists, it only compares
    strings. The first call on a new workspace creates the sqlite database (MLflow runs its
    schema migrations: a few seconds), without MLflow's INFO log lines.

    Parameters
    ----------
    workspace : path-like, default="."
        Folder holding ``mlruns/``.

    Returns
    -------
    str
        The tracking URI now in use (see :func:`tracking_uri`).
    """
    # artifact downloads (scoring reads what training logged) would draw progress bars
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(workspace)
    registry = _env(_REGISTRY_ENV, _set_registry) or uri
    if (
        uri in _initialised
        and mlflow.get_tracking_uri() == uri
        and mlflow.get_registry_uri() == registry
    ):
        return uri
    with _lock:
        _quiet_mlflow()
        if _env(_TRACKING_ENV, _derived_tracking) is None:
            _derived_tracking.add(uri)
        if _env(_REGISTRY_ENV, _set_registry) is None:
            _set_registry.add(registry)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(registry)
        if uri not in _initialised:
            if _owns_store(uri, workspace):
                # a copied or moved workspace: its store still names the old folder's mlruns
                relocate_store(workspace, Path(workspace).resolve() / _STORE_DIR / _DB_FILE)
                # create the database now (schema migrations), not inside the first run
                with warnings.catch_warnings():
                    # MLflow's store on SQLAlchemy 2.1: "The ``noload`` loader strategy is
                    # deprecated", once per process; MLflow's to fix, not the user's
                    warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy")
                    MlflowClient(uri).search_experiments(max_results=1)
            _initialised.add(uri)
    return uri


def ui_command(
    workspace: str | os.PathLike = ".", *, host: str = "127.0.0.1", port: int = 5000
) -> list[str] | None:
    """The ``mlflow ui`` command line that shows this workspace's runs and models.

    A plain ``mlflow ui`` in the workspace shows an empty store: MLflow takes the ``mlruns``
    folder for a file store, while retain keeps a sqlite database in it. Returns ``None`` when
    the tracking URI is a server (``http(s)://``), which has its own UI.
    """
    import sys

    uri = tracking_uri(workspace)
    if uri.startswith(("http://", "https://")):
        return None
    return [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
        "--host", host, "--port", str(port),
    ]  # fmt: skip


# --------------------------------------------------------------------------- experiments and runs


def experiment_name(family: str) -> str:
    """``retain-<family>`` for a known family; :class:`ConfigError` otherwise."""
    if family not in FAMILIES:
        known = ", ".join(FAMILIES)
        raise ConfigError(f"unknown model family {family!r}; expected one of: {known}")
    return f"{EXPERIMENT_PREFIX}{family}"


def ensure_experiment(family: str, workspace: str | os.PathLike = ".") -> str:
    """Get or create the experiment ``retain-<family>`` and return its id.

    When the workspace owns the store (no ``MLFLOW_TRACKING_URI``), a new experiment keeps its
    artifacts under ``<workspace>/mlruns/artifacts/<family>``; otherwise the tracking server's
    default artifact location applies. A deleted experiment of that name is restored.
    """
    name = experiment_name(family)
    uri = use_workspace(workspace)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if _owns_store(uri, workspace):
            folder = Path(workspace).resolve() / _STORE_DIR / "artifacts" / family
            location = folder.as_uri()
        try:
            return client.create_experiment(
                name, artifact_location=location, tags={"retain.family": family}
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(name)  # created concurrently?
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _status_for(error: BaseException | None) -> str:
    if error is None:
        return "FINISHED"
    # Ctrl-C, and a pruned Optuna trial, are interruptions rather than failures
    if isinstance(error, KeyboardInterrupt) or type(error).__name__ == "TrialPruned":
        return "KILLED"
    return "FAILED"


def _finish(run_id: str, status: str) -> None:
    """End ``run_id`` with ``status``, first ending nested runs the block left open above it.

    A run the block already ended itself is left as it is (and so is any run below it).
    """
    client = MlflowClient()
    if client.get_run(run_id).info.status != "RUNNING":
        return
    while (active := mlflow.active_run()) is not None:
        top = active.info.run_id
        if top != run_id and "mlflow.parentRunId" not in active.data.tags:
            break  # not one of ours: leave it alone
        mlflow.end_run(status=status)
        if top == run_id:
            return
    client.set_terminated(run_id, status=status)


@contextmanager
def _run(start: dict[str, Any]) -> Iterator[Run]:
    active = mlflow.start_run(**start)
    run_id = active.info.run_id
    try:
        yield active
    except BaseException as error:
        _finish(run_id, _status_for(error))
        raise
    _finish(run_id, "FINISHED")


_job_started: ContextVar[float | None] = ContextVar("retain_job_started", default=None)


@contextmanager
def job_clock() -> Iterator[float]:
    """Mark the start of a training job: its run's duration starts here, not at logging.

    A job builds its training set and fits before it opens its MLflow run; :func:`job_started`
    tells :func:`retain.training.publish.publish` when the job began. Nested clocks keep the
    outermost start.
    """
    outer = _job_started.get()
    started = outer if outer is not None else time.time()
    token = _job_started.set(started)
    try:
        yield started
    finally:
        _job_started.reset(token)


def job_started() -> float | None:
    """When the current :func:`job_clock` started (``time.time()``), or ``None`` outside one."""
    return _job_started.get()


@contextmanager
def training_run(
    family: str,
    workspace: str | os.PathLike = ".",
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    start_time: float | None = None,
) -> Iterator[Run]:
    """Start a run in the family's experiment; yield the active run.

    The run ends ``FINISHED`` when the block completes and ``FAILED`` when it raises (the
    exception propagates; ``KILLED`` on Ctrl-C). Tags ``retain.family`` and ``retain.version``
    are set on every run.

    Parameters
    ----------
    family : {"churn", "clv", "segments", "scoring"}
        Model family; the experiment is ``retain-<family>``.
    workspace : path-like, default="."
        Folder holding ``mlruns/``.
    run_name : str, optional
        Run name shown in the MLflow UI (MLflow makes one up otherwise).
    tags : mapping, optional
        Extra run tags; values are converted to strings.
    start_time : float, optional
        When the work the run records began (``time.time()``); default now. A training job
        passes its start, so that the run's duration covers the fit, not only the logging.
    """
    import retain

    experiment_id = ensure_experiment(family, workspace)
    all_tags = {"retain.family": family, "retain.version": retain.__version__}
    all_tags.update(
        {str(key): _clip(value, MAX_TAG_VAL_LENGTH) for key, value in (tags or {}).items()}
    )
    start: dict[str, Any] = {"experiment_id": experiment_id, "run_name": run_name, "tags": all_tags}
    if start_time is not None:
        created = MlflowClient().create_run(
            experiment_id, start_time=int(start_time * 1000), tags=all_tags, run_name=run_name
        )
        start = {"run_id": created.info.run_id}
    with _run(start) as run:
        yield run


@contextmanager
def child_run(
    run_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[Run]:
    """A nested run (a tuning trial) under the active run, in the parent's experiment.

    Parameters
    ----------
    run_name : str
        Name of the child run (e.g. ``trial-7``).
    params : mapping, optional
        Logged with :func:`log_params_flat`.
    tags : mapping, optional
        Extra tags of the child run.
    parent_run_id : str, optional
        Parent run; needed in worker threads, where MLflow sees no active run. Defaults to
        the active run.

    Raises
    ------
    RetainError
        No parent: neither an active run nor ``parent_run_id``.
    """
    parent = mlflow.active_run()
    if parent_run_id is None:
        if parent is None:
            raise RetainError("child_run needs a parent: start it inside training_run(...)")
        parent_run_id = parent.info.run_id
    if parent is not None and parent.info.run_id == parent_run_id:
        experiment_id = parent.info.experiment_id
    else:
        experiment_id = MlflowClient().get_run(parent_run_id).info.experiment_id
    start = {
        "experiment_id": experiment_id,
        "run_name": run_name,
        "nested": True,
        "parent_run_id": parent_run_id,
        "tags": {str(k): _clip(v, MAX_TAG_VAL_LENGTH) for k, v in (tags or {}).items()},
    }
    with _run(start) as run:
        if params:
            log_params_flat(params)
        yield run


# --------------------------------------------------------------------------- logging helpers


def _active_run_id() -> str:
    """The active run's id; MLflow would otherwise silently start a run in a default experiment."""
    run = mlflow.active_run()
    if run is None:
        raise RetainError("no active MLflow run: log inside `with training_run(...)`")
    return run.info.run_id


def _clip(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Series):
        return value.to_dict()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def log_json(obj: Any, artifact_file: str) -> None:
    """Log ``obj`` as an indented JSON artifact (numpy values, dates, paths, dataclasses allowed).

    Parameters
    ----------
    obj : object
        Anything JSON can hold, plus numpy scalars/arrays, dates, paths, sets and dataclasses.
    artifact_file : str
        Path inside the run's artifacts, e.g. ``"evaluation/metrics.json"``.
    """
    _active_run_id()
    mlflow.log_text(json.dumps(obj, indent=2, default=_json_default), artifact_file)


def log_frame(frame: pd.DataFrame, artifact_file: str, *, index: bool = False) -> None:
    """Log a DataFrame as a CSV artifact (without its index unless ``index=True``).

    Text cells a spreadsheet would take for formulas are neutralised, as in every CSV retain
    writes (:mod:`retain.csvfile`).
    """
    from retain.csvfile import neutralise_frame

    _active_run_id()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"log_frame expects a pandas DataFrame, got {type(frame).__name__}")
    mlflow.log_text(neutralise_frame(frame).to_csv(index=index), artifact_file)


def log_figure(fig: Figure, artifact_file: str) -> None:
    """Log a matplotlib Figure as a PNG artifact (``.png`` is appended when missing).

    The figure is neither shown nor closed: the caller owns it.
    """
    _active_run_id()
    path = Path(artifact_file)
    if path.suffix == "":
        artifact_file = f"{artifact_file}.png"
    elif path.suffix.lower() != ".png":
        raise ValueError(f"log_figure writes PNG files; got {artifact_file!r}")
    mlflow.log_figure(fig, artifact_file)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level with dotted names: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    return _flatten(mapping, prefix, {})


def _flatten(mapping: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            _flatten(value, name, out)
        else:
            out[name] = value
    return out


def log_params_flat(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Log a nested mapping as parameters with dotted names, e.g. ``model.max_depth``.

    Values become strings, clipped to MLflow's limit (6,000 characters) with a trailing ``…``.
    MLflow refuses to change a parameter already logged in the run with another value.

    Parameters
    ----------
    mapping : mapping
        Possibly nested settings (a config as a dict).
    prefix : str, default=""
        Prepended to every name, joined with a dot.

    Returns
    -------
    dict of str to str
        The parameters as logged.
    """
    run_id = _active_run_id()
    params = {
        name: _clip(value, MAX_PARAM_VAL_LENGTH)
        for name, value in _flatten(mapping, prefix.rstrip("."), {}).items()
    }
    items = list(params.items())
    for start in range(0, len(items), _BATCH):
        mlflow.log_params(dict(items[start : start + _BATCH]), run_id=run_id)
    return params


def _metric_name(prefix: str, key: str) -> str:
    if not prefix:
        return key
    return f"{prefix}{key}" if prefix[-1] in "._/-:" else f"{prefix}.{key}"


def log_metrics_prefixed(
    metrics: Mapping[str, Any], prefix: str, step: int | None = None
) -> dict[str, float]:
    """Log metrics named ``<prefix>.<name>``; non-finite values become a tag note instead.

    A NaN or infinite value (or one that is not a number) is not logged as a metric, where it
    would spoil charts and comparisons; the tag ``nonfinite.<prefix>.<name>`` records it.

    Parameters
    ----------
    metrics : mapping of str to float
        Metric values.
    prefix : str
        Joined with a dot, unless it already ends in one of ``. _ / - :``; may be empty.
    step : int, optional
        Step of the metric values (e.g. a cutoff index).

    Returns
    -------
    dict of str to float
        The metrics logged, by full name.
    """
    run_id = _active_run_id()
    finite: dict[str, float] = {}
    notes: dict[str, str] = {}
    for key, value in metrics.items():
        name = _metric_name(prefix, str(key))
        try:
            number = float(value)
        except (TypeError, ValueError):
            notes[f"nonfinite.{name}"] = _clip(repr(value), MAX_TAG_VAL_LENGTH)
            continue
        if math.isfinite(number):
            finite[name] = number
        else:
            notes[f"nonfinite.{name}"] = str(number)
    if finite:
        mlflow.log_metrics(finite, step=step, run_id=run_id)
    if notes:
        mlflow.set_tags(notes)
    return finite


# --------------------------------------------------------------------------- models


def _requirement_line(spec: str) -> str | None:
    from packaging.requirements import Requirement

    requirement = Requirement(spec)
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        return None  # an extra (test, dev), not a runtime dependency
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return str(requirement)
    return f"{requirement.name}{extras}=={version}"


@lru_cache(maxsize=1)
def runtime_requirements() -> tuple[str, ...]:
    """Pinned pip requirements of a logged model: retain's runtime dependencies as installed.

    Read from ``importlib.metadata`` (no import scanning, which costs MLflow seconds per model),
    plus ``cloudpickle`` to unpickle the model. ``retain`` itself is not on PyPI and is not
    listed: the environment that loads a model must have it installed.
    """
    try:
        specs = importlib.metadata.requires("retain") or []
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        specs = ["scikit-learn", "pandas", "numpy"]
    lines = [line for spec in specs if (line := _requirement_line(spec)) is not None]
    if not any(line.startswith("cloudpickle") for line in lines):
        lines.append(_requirement_line("cloudpickle") or "cloudpickle")
    return tuple(lines)


def _signature(example: pd.DataFrame, output: Any, optional: bool = False):
    """The signature of ``example`` -> ``output``; with ``optional``, every input optional
    (retain's pyfunc checks the columns it needs itself and names only those missing)."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    with warnings.catch_warnings():
        # a hint about integer columns and missing values, repeated for every model
        warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer")
        signature = infer_signature(example, output)
    if not optional or signature.inputs is None:
        return signature
    inputs = Schema(
        [ColSpec(spec.type, spec.name, required=False) for spec in signature.inputs.inputs]
    )
    return ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)


#: The pyfunc output of each family's model (see :mod:`retain.mlflow.pyfunc`).
FAMILY_OUTPUTS = {"churn": "churn", "clv": "clv", "segments": "segments", "uplift": "prediction"}


def log_model(
    model: Any,
    input_example: pd.DataFrame,
    name: str = "model",
    predict_method: str = "predict_proba",
    registered_model_name: str | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    output: str | None = None,
    parts: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Log a fitted sklearn-style model to the active run, with a signature and an input example.

    The model gets two flavours (see :mod:`retain.mlflow.pyfunc`): ``sklearn``, the fitted
    object serialised with cloudpickle, which :func:`retain.mlflow.registry.load_model`
    returns; and ``python_function``, which ``mlflow.pyfunc.load_model`` returns and which
    predicts named columns (``churn_probability``; ``clv`` and its parts; segment labels) from
    a snapshot's columns. retain's source is logged with the model (``code/``), so it loads
    where retain is not installed; pip requirements come from :func:`runtime_requirements`.
    The signature describes the example (its first five rows; every input optional, as the
    pyfunc checks and names missing columns itself) and the pyfunc's output on it.

    Parameters
    ----------
    model : estimator
        Fitted, picklable model with ``predict`` and ``predict_method``.
    input_example : pandas.DataFrame
        A few rows of model input (features only), as at scoring time.
    name : str, default="model"
        Name of the logged model within the run.
    predict_method : str, default="predict_proba"
        The method scoring calls (``"predict"`` for regressors); recorded in the metadata.
    registered_model_name : str, optional
        Also register the model under this name (a family is turned into ``retain-<family>``),
        without tags or aliases. Prefer :func:`retain.mlflow.registry.register`.
    metadata : mapping, optional
        Extra entries for the MLmodel metadata.
    output : {"churn", "clv", "segments", "prediction"}, optional
        What the pyfunc returns; default ``churn`` for ``predict_proba``, else ``prediction``
        (the output of ``predict``, as a column ``prediction`` unless it is a frame).
    parts : mapping, optional
        Other fitted models the pyfunc needs, logged inside this one (segments: ``{"clv":
        clv_model}``, so that CLV is computed from the snapshot when no ``clv`` column is given).

    Returns
    -------
    mlflow.models.model.ModelInfo
        Includes ``model_uri`` (``models:/m-<id>``), ``model_id`` and ``signature``.
    """
    import mlflow.sklearn
    from mlflow.models import Model

    from retain.mlflow import pyfunc

    _active_run_id()
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ValueError("log_model needs a non-empty pandas DataFrame as input_example")
    method = getattr(model, predict_method, None)
    if not callable(method):
        raise ValueError(f"{type(model).__name__} has no method {predict_method!r}")
    if output is None:
        output = "churn" if predict_method == "predict_proba" else "prediction"
    example = input_example.head(_EXAMPLE_ROWS)
    columns = list(example.columns)
    if output == "segments" and pyfunc.CLV_COLUMN not in columns:
        columns.append(pyfunc.CLV_COLUMN)  # optional: computed by the CLV part when absent
    features = example.drop(columns=[pyfunc.CLV_COLUMN], errors="ignore") if parts else example
    # a snapshot's id and cutoff are inputs too: the id is passed through, the cutoff ignored
    keys = example.assign(
        customer_id=[f"C{row}" for row in range(len(example))], as_of=pd.Timestamp("2000-01-01")
    )[[pyfunc.ID_COLUMN, "as_of", *example.columns]]
    predicted = pyfunc.RetainPyfuncModel(model, output, columns, parts).predict(keys)
    if pyfunc.CLV_COLUMN in columns and pyfunc.CLV_COLUMN not in keys.columns:
        keys = keys.assign(clv=predicted[pyfunc.CLV_COLUMN].to_numpy())  # an optional input
    signature = _signature(keys, predicted, optional=True)
    if registered_model_name is not None:
        registered_model_name = model_name(registered_model_name)
    import retain

    meta = {"retain_version": retain.__version__, "predict_method": predict_method}
    meta.update(metadata or {})
    _quiet_mlflow()
    with warnings.catch_warnings():
        # MLflow compares the example's columns with a range, which pandas 3 deprecates
        warnings.filterwarnings("ignore", message=r"Operation with range is deprecated")
        return Model.log(
            None,  # artifact_path: deprecated in MLflow 3 in favour of name, still positional
            name=name,
            flavor=pyfunc,
            registered_model_name=registered_model_name,
            metadata=meta,
            sk_model=model,
            output=output,
            columns=columns,
            parts=parts,
            signature=signature,
            input_example=features,
            pip_requirements=list(runtime_requirements()),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn=predict_method if predict_method in PYFUNC_METHODS else "predict",
            # the signature was inferred from the pyfunc's own output on the example
            validate_serving_input=False,
        )


@contextmanager
def trusted_model_loading() -> Iterator[None]:
    """Allow MLflow to unpickle models for the duration of the block.

    MLflow 3 refuses to deserialise any scikit-learn model unless
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is ``true``. Use this only for models of the
    workspace's own store (which this project wrote); a value the user set is left alone.
    """
    previous = os.environ.get(_PICKLE_ENV)
    if previous is not None:
        yield
        return
    os.environ[_PICKLE_ENV] = "true"
    try:
        yield
    finally:
        os.environ.pop(_PICKLE_ENV, None)
