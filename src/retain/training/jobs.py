"""Run training jobs by family name: what ``retain train`` and ``retain tune`` call.

Each job reads its config from ``<workspace>/training/<family>.yaml`` (the packaged one when
absent), where the data, mapping, store and definitions are, the engine and the seed from the
workspace config ``retain.yaml`` (``data``, ``mapping`` and ``engine`` given here override
it), and tracks into ``<workspace>/mlruns``. ``train all`` runs churn, CLV and segments in that
order (segments need the CLV champion), reading the data once.

The workspace's engine (:func:`retain.engines.get_engine`) builds the training sets and fits
the xgboost models: in this process on DuckDB, with ``xgboost.spark`` on Spark; segments fit on
one cutoff's rows on the driver whatever the engine. Models, tracking and registration are the
same for every engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from retain.engines import get_engine
from retain.errors import ConfigError
from retain.features import CutoffWarning, SourceData, open_sources, open_store
from retain.mlflow.tracking import job_clock, tracking_uri
from retain.progress import ProgressReporter, console, null_progress
from retain.training.baselines import simulation_truth
from retain.training.config import FAMILIES, JobConfig, load_config
from retain.training.dataset import TrainingWarning
from retain.training.publish import JobResult
from retain.workspace import WorkspaceConfig, resolve_path, workspace_settings

__all__ = ["JOBS", "mlflow_ui_command", "run_plans", "run_training", "run_tuning"]


def _churn(*args, **kwargs) -> JobResult:
    from retain.training.churn import train_churn

    return train_churn(*args, **kwargs)


def _clv(*args, **kwargs) -> JobResult:
    from retain.training.clv import train_clv

    return train_clv(*args, **kwargs)


def _segments(config, sources, store, *, truth=None, **kwargs) -> JobResult:
    from retain.training.segments import train_segments

    return train_segments(config, sources, store, **kwargs)


def _uplift(*args, **kwargs) -> JobResult:
    from retain.training.uplift import train_uplift

    return train_uplift(*args, **kwargs)


#: Every job ``retain train`` knows; ``all`` runs those of :data:`FAMILIES` (uplift, which
#: needs a campaigns log, only when named).
JOBS: dict[str, Callable[..., JobResult]] = {
    "churn": _churn,
    "clv": _clv,
    "segments": _segments,
    "uplift": _uplift,
}


def _inputs(
    family: str,
    workspace: Path,
    settings: WorkspaceConfig,
    data: object,
    config_path: Path | None,
    cache: dict,
) -> tuple[JobConfig, SourceData, object]:
    config = load_config(family, config_path, workspace=workspace, workspace_config=settings)
    location = data if data is not None else resolve_path(workspace, config.data)
    key = (str(location), config.mapping)
    if key not in cache:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CutoffWarning)
            cache[key] = open_sources(config, location, workspace)
        for message in [*cache[key].notes, *(str(w.message) for w in caught)]:
            console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
    return config, cache[key], simulation_truth(location)


def run_training(
    families: str | list[str],
    *,
    workspace: str | Path = ".",
    data: object = None,
    mapping: str | Path | None = None,
    config_path: str | Path | None = None,
    progress: Callable[[str], ProgressReporter] | None = None,
    on_done: Callable[[JobResult], None] | None = None,
    engine: str | None = None,
    spark_config: str | Path | None = None,
) -> list[JobResult]:
    """Train one family, or several in order (``"all"`` = churn, CLV, segments).

    Parameters
    ----------
    families : str or list of str
        ``churn``, ``clv``, ``segments``, ``uplift`` or ``all`` (churn, CLV, segments).
    workspace : str or Path, default="."
        Folder with ``retain.yaml``, ``training/``, ``features/``, ``store/`` and ``mlruns/``.
    data : str, Path, Dataset or tables, optional
        Sources (default: ``data`` of ``retain.yaml``). A folder is relative to the current
        folder.
    mapping : str or Path, optional
        Column mapping of a data folder (default: ``mapping`` of ``retain.yaml``).
    config_path : str or Path, optional
        Config file; only with a single family.
    progress : callable, optional
        ``progress(family)`` returns the reporter of that job.
    on_done : callable, optional
        Called with each job's result as soon as it is done.
    engine : {"duckdb", "spark"}, optional
        Where the churn and CLV training sets are built and their models fitted (default:
        ``engine`` of ``retain.yaml``).
    spark_config : str or Path, optional
        Spark settings file replacing the ``spark`` section of ``retain.yaml``; only with
        ``spark``.
    """
    names = _families(families, config_path)
    workspace, cache, results = Path(workspace), {}, []
    settings = workspace_settings(workspace, data=data, mapping=mapping, engine=engine)
    for family in names:  # every config checked before any data are read
        load_config(family, config_path, workspace=workspace, workspace_config=settings)
    engine = get_engine(settings.engine, workspace=workspace, config_file=spark_config)
    try:
        for family in names:
            config, sources, truth = _inputs(family, workspace, settings, data, config_path, cache)
            reporter = progress(family) if progress else null_progress
            # the run's duration covers the whole job, fit included
            with job_clock(), printed_warnings():
                result = JOBS[family](
                    config, sources, open_store(config, workspace), workspace=str(workspace),
                    truth=truth, progress=reporter, engine=engine,
                )  # fmt: skip
            results.append(result)
            if on_done is not None:
                on_done(result)
    finally:
        engine.release()
    return results


@contextmanager
def printed_warnings() -> Iterator[None]:
    """Print each :class:`TrainingWarning` as a ``warning:`` line when it is raised (every
    other warning is shown as Python shows it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", TrainingWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, TrainingWarning):
                console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show  # restored by catch_warnings
        yield


def run_plans(
    families: str | list[str],
    *,
    workspace: str | Path = ".",
    data: object = None,
    mapping: str | Path | None = None,
    config_path: str | Path | None = None,
) -> list:
    """The plan of each job (see :func:`retain.training.plan.make_plan`), without training.

    Parameters are those of :func:`run_training`.
    """
    from retain.training.plan import make_plan

    names = _families(families, config_path)
    if "uplift" in names:  # its cutoffs are the campaigns' days, not a plan of month starts
        raise ConfigError(
            "retain plan is for churn, clv and segments; uplift trains on the campaigns' days "
            "(the latest with a complete outcome window validates): see retain train uplift"
        )
    workspace, cache = Path(workspace), {}
    settings = workspace_settings(workspace, data=data, mapping=mapping)
    plans = []
    for family in names:
        config, sources, _ = _inputs(family, workspace, settings, data, config_path, cache)
        plans.append(make_plan(config, sources, family))
    return plans


def _families(families: str | list[str], config_path: str | Path | None) -> list[str]:
    if isinstance(families, str):
        families = list(FAMILIES) if families == "all" else [families]
    names = list(families)
    unknown = [name for name in names if name not in JOBS]
    if unknown:
        raise ConfigError(f"unknown model family {unknown[0]!r}; known: {', '.join(JOBS)}, all")
    if config_path is not None and len(names) > 1:
        raise ConfigError("--config names one family's config; use it with a single family")
    return names


def run_tuning(
    family: str,
    *,
    workspace: str | Path = ".",
    data: object = None,
    mapping: str | Path | None = None,
    config_path: str | Path | None = None,
    trials: int | None = None,
    timeout_minutes: float | None = None,
    progress: ProgressReporter = null_progress,
):
    """Tune ``churn`` or ``clv`` with Optuna and train the final model (see :mod:`tuning`).

    ``workspace``, ``data``, ``mapping`` and ``config_path`` as in :func:`run_training`;
    tuning runs in this process whatever the workspace's engine.
    """
    from retain.training.tuning import tune

    if family not in ("churn", "clv"):
        raise ConfigError(f"tuning is for churn or clv, not {family!r}")
    workspace = Path(workspace)
    settings = workspace_settings(workspace, data=data, mapping=mapping)
    config, sources, truth = _inputs(family, workspace, settings, data, config_path, {})

    def train(*args, **kwargs) -> JobResult:
        with printed_warnings():
            return JOBS[family](*args, truth=truth, progress=progress, **kwargs)

    return tune(
        family, config, sources, open_store(config, workspace), train=train,
        workspace=str(workspace), trials=trials, timeout_minutes=timeout_minutes,
        progress=progress,
    )  # fmt: skip


def mlflow_ui_command(workspace: str | Path = ".") -> str:
    """The command that opens the MLflow UI on this workspace's runs (``retain mlflow ui``), or
    the tracking server's address when ``MLFLOW_TRACKING_URI`` names one."""
    uri = tracking_uri(workspace)
    if uri.startswith(("http://", "https://")):
        return uri
    here = Path(workspace).resolve() == Path.cwd().resolve()
    return "retain mlflow ui" + ("" if here else f" --workspace {workspace}")
