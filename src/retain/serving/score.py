"""``retain score``: the ranked, explained, budget-aware retention-priority list at a cutoff.

One orchestration for every engine (:mod:`retain.engines`), step by step:

1. **Population.** The snapshot at ``as_of`` (the file training reads for its cutoffs, built
   first if missing) for the customers active at ``as_of``: the population the models were
   trained on (see :mod:`retain.serving.population`), kept as the engine's rows.
2. **Drift.** PSI of the model features against the churn model's validation rows, on every
   customer where the rows are in this process, else on a seeded sample of
   :data:`DRIFT_SAMPLE_ROWS`.
3. **Scoring.** :func:`score_batch` (churn probability, CLV and the value if retained,
   segments, reasons from SHAP contributions, per eligible action the expected incremental
   margin and net gain, see :mod:`retain.serving.gains`) on each batch of rows: the
   whole population at once on DuckDB, each Arrow batch in ``mapInPandas`` on Spark. Every
   value depends on the customer's own row only, so both give the same list.
4. **Ranking and selection.** The id, gain, value at risk, cost, action and churn probability
   of every customer are collected to the driver, where
   :func:`retain.serving.selection.rank_and_select` selects (within capacity and budget) and
   ranks, and
   :func:`retain.serving.experiment.hold_out` holds out each action's control group (blocked
   on the ranks); the engine adds the ranks, flags and groups to its rows.
5. **Writing.** The list is written to a temporary folder that replaces the output folder only
   when complete, so an interrupted run leaves the previous list intact: the Parquet file (by
   the engine), the CSV copy (up to ``csv_max_rows`` rows where the list is not in this
   process), ``summary.json`` (its tallies by :func:`retain.engines.rules.tallies`), the
   contact sheet (the treatment group only), the campaign log and, where the folder held
   one, the report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.atomic import atomic_dir, check_output_dir, failpoint
from retain.csvfile import write_csv
from retain.engines import Engine, Rows, get_engine
from retain.engines.rules import RANKING_INPUTS
from retain.errors import RetainError, storage_error
from retain.features import (
    CutoffWarning,
    FeatureStore,
    SourceData,
    default_cutoff,
    open_sources,
    open_store,
    with_categories,
)
from retain.features.store import categories
from retain.metrics.drift import age_drift, population_stability
from retain.mlflow import tracking
from retain.progress import ProgressReporter, null_progress
from retain.serving.campaigns import check_campaign_history, load_uplift
from retain.serving.champions import (
    Champion,
    check_champions,
    check_features,
    load_champions,
    run_table,
)
from retain.serving.config import (
    Playbook,
    ScoreConfig,
    check_score_config,
    load_playbook,
    load_score_config,
)
from retain.serving.contract import (
    CSV_FILE,
    LIST_COLUMNS,
    LIST_FILE,
    LIST_KIND,
    LIST_LEGACY_FILES,
    REPORT_FILE,
    SUMMARY_FILE,
)
from retain.serving.experiment import (
    CAMPAIGN_LOG,
    CONTROL,
    TREATMENT,
    campaign_id,
    campaign_log,
    hold_out,
)
from retain.serving.gains import (
    ALIVE_FLOOR,
    choose_actions,
    clv_if_retained,
    eligibility,
    gains_source,
    retained_value_method,
)
from retain.serving.population import active_population
from retain.serving.pseudonyms import pseudonym_key, pseudonymize
from retain.serving.reasons import (
    Explainer,
    phrase_table_for,
    typical_from_frame,
    typical_from_profile,
)
from retain.serving.selection import Selection, rank_and_select, selection_summary
from retain.serving.sheets import contact_sheet, round_for_people, write_contacts
from retain.training.config import load_config
from retain.workspace import locate, resolve_path, workspace_settings

__all__ = ["DRIFT_SAMPLE_ROWS", "SCORED_SCHEMA", "ScoreResult", "ScoringJob", "build_explainer",
           "check_population", "finish_folder", "influence_values", "open_inputs", "refuse_drift",
           "score", "score_batch"]  # fmt: skip

#: A function writing the HTML report of the list in a folder:
#: ``render(folder, file, final_folder=out)``, ``folder`` being the temporary folder the list
#: is written in and ``out`` where it will be (what the report finds beside it, e.g. the
#: profitability folder of the cutoff, is beside ``out``).
ReportRenderer = Callable[..., Any]

#: Scoring more than this many days after the last event is refused: the list would be stale.
STALE_AFTER_DAYS = 31
#: Where the rows are not in this process, drift and the typical customer are measured on a
#: seeded random sample of about this many customers (on every one up to it).
DRIFT_SAMPLE_ROWS = 200_000
#: Columns :func:`score_batch` gives the list, in order, with their types.
SCORED_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("as_of", pa.date32()), ("churn_probability", pa.float64()),
     ("clv", pa.float64()), ("clv_if_retained", pa.float64()), ("value_at_risk", pa.float64()),
     ("recommended_action", pa.string()), ("action_cost", pa.float64()),
     ("save_rate", pa.float64()), ("expected_incremental_margin", pa.float64()),
     ("expected_churn_effect", pa.float64()), ("expected_net_gain", pa.float64()),
     ("sleeping_dog", pa.bool_()), ("segment", pa.string()),
     ("value_tier", pa.string()), ("loyalty_class", pa.string()),
     ("lifecycle_stage", pa.string()), ("cluster", pa.int64()), ("reason_1", pa.string()),
     ("reason_2", pa.string()), ("reason_3", pa.string()), ("recency_days", pa.float64()),
     ("frequency", pa.float64()), ("monetary_total", pa.float64()),
     ("influence_value", pa.float64())]
)  # fmt: skip


@dataclass(frozen=True)
class ScoreResult:
    """A written retention-priority list.

    ``frame`` is the list in rank order; from an engine whose rows are not in this process
    (Spark), only its first ``csv_max_rows`` rows when it is longer (the Parquet file holds
    every row). ``report`` says what happened to a
    ``report.html`` the output folder held: ``"regenerated"`` from the new list, ``"kept"``
    (the previous list's, when no renderer was given), or ``None`` when there was none.
    """

    out: Path
    frame: pd.DataFrame
    summary: dict
    run_id: str | None = None
    report: str | None = None


@dataclass(frozen=True)
class ScoringJob:
    """What one ``score`` call scores with, whatever the engine."""

    as_of: date
    workspace: Path
    config: ScoreConfig
    playbook: Playbook
    champions: dict[str, Champion]
    data: object
    out: Path
    key: bytes | None
    progress: ProgressReporter
    currency: str = ""
    render_report: ReportRenderer | None = None
    uplift: dict[str, Any] | None = None
    #: margin where a transaction has none, and the configured costs: the profit to date of
    #: the customers each one referred (``influence_value``) is counted as the P&L counts it
    margin_rate: float = 0.3
    cost_rates: dict[str, float] | None = None

    @property
    def previous_report(self) -> str | None:
        """What becomes of the output folder's ``report.html``: regenerated, kept or none."""
        if not (self.out / REPORT_FILE).is_file():
            return None
        return "regenerated" if self.render_report is not None else "kept"


def _check_writable(out: Path) -> None:
    """Refuse an output folder retain may not replace, or cannot write, before any work."""
    check_output_dir(out, LIST_KIND, legacy_files=LIST_LEGACY_FILES)
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".retain-write-test"):
            pass
    except OSError as error:
        raise RetainError(f"cannot write the list under {folder}: {error.strerror}") from None


def _check_as_of(as_of: date, sources: SourceData) -> None:
    bounds = sources.event_range
    if bounds is None:
        raise RetainError(f"no transactions or interactions in {sources.origin or 'the data'}")
    first, last = (pd.Timestamp(bound).date() for bound in bounds)
    if as_of <= first or as_of > last + timedelta(days=STALE_AFTER_DAYS):
        raise RetainError(
            f"--as-of {as_of} is outside the data ({first} to {last}); score at a date after "
            f"the first event and at most {STALE_AFTER_DAYS} days after the last "
            f"(usually the day after the last event, {last + timedelta(days=1)})"
        )


def _drift(churn: Champion, population: pd.DataFrame, config: ScoreConfig) -> dict[str, Any]:
    """PSI of each model feature against the churn model's validation rows (its run's profile)."""
    empty = {"threshold": config.drift.threshold, "psi": {}, "drifted": [], "max_psi": None,
             "strict": config.drift.strict}  # fmt: skip
    if churn.drift_reference is None:
        return {**empty, "note": f"{churn.name} v{churn.version} logged no drift reference"}
    values = population_stability(churn.drift_reference, population)
    drifted = [name for name, value in values.items() if value > config.drift.threshold]
    return {
        **empty,
        "reference_as_of": ", ".join(churn.manifest.get("validation_cutoffs", [])),
        "max_psi": float(values.max()),
        "drifted": drifted,
        "psi": {name: round(float(value), 6) for name, value in values.items()},
        # features that grow with time: compared relative to their population (psi above)
        "age_features": age_drift(churn.drift_reference, population),
    }


def _base_rate(churn: Champion) -> float | None:
    """The churn rate of the rows the churn model was validated on, when its run logged it."""
    for key in ("model_positive_rate", "positive_rate"):
        value = churn.metrics.get(key)
        if value is not None and np.isfinite(value):
            return float(value)
    return None


def build_explainer(
    churn: Champion, repository: Path | None, currency: str, count: int, sample: pd.DataFrame
) -> Explainer:
    """The reasons' wording (the repository's ``reasons.yaml``) and references: the typical
    customer from the churn model's drift profile (else from ``sample``, the customers being
    scored) and the churn rate it was validated on."""
    typical = typical_from_profile(churn.drift_reference)
    if not typical:
        typical = typical_from_frame(sample.drop(columns=["customer_id", "as_of"], errors="ignore"))
    return Explainer(phrase_table_for(repository), typical, _base_rate(churn), currency, count)


def score_batch(
    population: pd.DataFrame,
    models: Mapping[str, Any],
    playbook: Playbook,
    config: ScoreConfig,
    *,
    approximate: bool,
    explainer: Explainer | None = None,
    influence: pd.Series | None = None,
) -> pd.DataFrame:
    """Score a batch of customers: churn, CLV, value if retained, segments, reasons, and the
    eligible action with the highest expected net gain (:mod:`retain.serving.gains`).

    Every value depends on the customer's own row only, so scoring the population at once (the
    DuckDB engine) and batch by batch (the Spark engine, in ``mapInPandas``) give the same list.
    ``score`` applies it through :meth:`retain.engines.Engine.map_batches`.

    Parameters
    ----------
    population : pandas.DataFrame
        ``customer_id``, ``as_of`` and the snapshot's features (attributes with a vocabulary as
        categoricals), indexed ``0..n-1``.
    models : mapping
        The ``churn``, ``clv`` and ``segments`` models, and optionally ``uplift`` (a fitted
        ``retain.models.uplift.UpliftModel``: ``predict_effects(X)`` gives the effects of
        each action it knows; without it the playbook's save rates are the prior).
    playbook : Playbook
        Actions and the rules that choose one.
    config : ScoreConfig
        Scoring settings (``reasons``).
    approximate : bool
        Saabas contributions instead of exact TreeSHAP (decided on the whole population's size).
    explainer : Explainer, optional
        Wording and references of the reasons (:func:`build_explainer`; the packaged wording
        without references when absent).
    influence : pandas.Series, optional
        Influence value by customer id (:func:`influence_values`): the list's
        ``influence_value``, 0 for a customer not in it.

    Returns
    -------
    pandas.DataFrame
        The list's columns except ``rank`` and ``selected`` (plus the segment model's other
        outputs), one row per customer of ``population``, in its order.
    """
    churn, clv, segments = (models[f] for f in ("churn", "clv", "segments"))
    X = population.drop(columns=["customer_id", "as_of"])
    probability = churn.predict_proba(X)[:, 1]
    value = np.asarray(clv.predict(X), dtype=float)
    retained, _ = clv_if_retained(clv, X, value)
    assigned = segments.predict(X.assign(clv=value)).reset_index(drop=True)
    contributions = churn.contributions(X, approximate=approximate)
    if explainer is None:
        explainer = Explainer(phrase_table_for(None), count=config.reasons)
    reasons, top_reason = explainer.explain(
        contributions, X, probability, value, assigned["value_tier"].to_numpy(dtype=object)
    )
    frame = pd.concat([population[["customer_id", "as_of"]], assigned, reasons], axis=1)
    frame["as_of"] = frame["as_of"].dt.date
    frame["churn_probability"] = probability
    frame["clv"] = value
    frame["clv_if_retained"] = retained
    frame["value_at_risk"] = probability * retained
    frame["influence_value"] = _influence_of(population["customer_id"], influence)
    effects = None
    if models.get("uplift") is not None:
        effects = models["uplift"].predict_effects(X).reset_index(drop=True)
    allowed = eligibility(frame, top_reason, playbook)
    chosen = choose_actions(allowed, playbook, probability, frame["value_at_risk"], effects)
    for name in chosen.columns:
        frame[name] = chosen[name].to_numpy()
    for name in ("recency_days", "frequency", "monetary_total"):
        frame[name] = population[name].astype(float)
    return frame


def _influence_of(ids: pd.Series, influence: pd.Series | None) -> np.ndarray:
    if influence is None or influence.empty:
        return np.zeros(len(ids))
    return ids.astype(str).map(influence).fillna(0.0).to_numpy(dtype=float)


def influence_values(
    engine: Engine,
    sources: SourceData,
    as_of: date,
    margin_rate: float = 0.3,
    cost_rates: Mapping[str, float] | None = None,
) -> pd.Series:
    """Influence value of each customer who referred someone: the profit to date at ``as_of``
    of the customers they referred (``influence_realised`` of
    :meth:`retain.engines.Engine.profit_and_loss`, one definition with ``retain
    profitability``), indexed by customer id; empty when no customer names a referrer
    (``customers.referred_by``), so that data without referrals cost nothing more."""
    if not sources.has_referrals:
        return pd.Series(dtype=float)
    pnl = engine.profit_and_loss(sources, as_of, margin_rate=margin_rate, cost_rates=cost_rates)
    referrers = pnl[pnl["referrals"] > 0]
    return pd.Series(
        referrers["influence_realised"].to_numpy(dtype=float),
        index=referrers["customer_id"].astype(str).to_numpy(),
    )


def _model_card(champions: dict[str, Champion]) -> dict[str, Any]:
    churn = champions["churn"]
    card: dict[str, Any] = {"churn": {"metrics": churn.metrics}, "clv": {}}
    calibration = run_table(churn, "evaluation/calibration_table.csv")
    gain = run_table(churn, "evaluation/gain_curve.csv")
    if calibration is not None:
        card["churn"]["calibration"] = calibration.to_dict(orient="records")
    if gain is not None:
        card["churn"]["gain"] = {column: gain[column].round(6).tolist() for column in gain}
    card["clv"]["metrics"] = champions["clv"].metrics
    return card


def _tallies(
    counted: dict[str, dict],
    selection: Selection,
    value_at_risk: np.ndarray,
    groups: np.ndarray,
    actions: np.ndarray,
    job: ScoringJob,
) -> dict:
    """``counts``, ``totals`` (the engine's :func:`retain.engines.rules.tallies`),
    ``selection``, ``gains`` and ``experiment`` of ``summary.json``."""
    prices = {name: (a.cost, a.save_rate) for name, a in job.playbook.actions.items()}
    by_action: dict[str, dict[str, int]] = {}
    for action, group in zip(actions[selection.chosen], groups[selection.chosen], strict=True):
        by_action.setdefault(str(action), {TREATMENT: 0, CONTROL: 0})[str(group)] += 1
    return {
        **counted,
        "selection": selection_summary(selection, value_at_risk, prices, job.currency),
        "gains": gains_source(
            job.playbook,
            job.uplift,
            clv_days=job.champions["clv"].manifest.get("horizon_days"),
            discount_rate_monthly=_discount_rate(job.champions["clv"].model),
        ),
        "clv_if_retained": {
            "method": retained_value_method(job.champions["clv"].model),
            "alive_floor": ALIVE_FLOOR,
        },
        "experiment": {
            "campaign_id": campaign_id(job.as_of),
            "control_share": job.config.control_share,
            "seed": job.config.seed,
            "treatment": sum(item[TREATMENT] for item in by_action.values()),
            "control": sum(item[CONTROL] for item in by_action.values()),
            "by_action": dict(sorted(by_action.items())),
            "campaign_log": None if job.key is not None else CAMPAIGN_LOG,
            "note": "control customers are selected but not contacted: they measure what "
            "the contacts add (retain backtest, once the horizon has passed)",
        },
    }


def _discount_rate(model: object) -> float:
    """The monthly discount rate of a CLV model (``CLVModel`` or its ``BTYDValue``); 0 for a
    model that does not discount."""
    for part in (model, getattr(model, "btyd_", None)):
        rate = getattr(part, "discount_rate_monthly", None)
        if rate is not None:
            return float(rate)
    return 0.0


def _summary(
    tallies, as_of, champions, store, sources, drift, config, pseudonymized, explainer, job
) -> dict:
    rows = tallies["counts"]["scored"]
    churn_horizon = champions["churn"].manifest.get("horizon_days")
    return {
        "as_of": as_of.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "currency": job.currency,
        **tallies,
        "models": {family: champion.describe() for family, champion in champions.items()},
        "model_card": _model_card(champions),
        "feature_views": store.repository.versions,
        "data_fingerprint": sources.fingerprint,
        "drift": drift,
        "horizons": {
            "churn_days": churn_horizon,
            "clv_days": champions["clv"].manifest.get("horizon_days"),
            "active_days": config.active_days,
        },
        "pseudonymized": pseudonymized,
        "reasons_method": "saabas" if rows > config.exact_reasons_max_rows else "treeshap",
        "reasons": {
            "table": explainer.table.source,
            "language": explainer.table.language,
            "low_risk_below": explainer.low_risk_threshold,
            "validated_churn_rate": explainer.base_rate,
            "typical_from": "churn model's validation rows"
            if champions["churn"].drift_reference
            else "scored customers",
        },
        "report": job.previous_report,
    }


def _write(job: ScoringJob, engine: Engine, listing: Rows, summary: dict, rows: int):
    """Write the list's files into a temporary folder that replaces the output folder when
    complete; return the list on the driver (or its first ``csv_max_rows`` rows, where the
    list is not in this process and longer)."""
    limit = job.config.csv_max_rows
    fits = engine.in_process or limit is None or rows <= limit
    try:
        with atomic_dir(job.out, kind=LIST_KIND, legacy_files=LIST_LEGACY_FILES) as folder:
            engine.write_list(listing, folder / LIST_FILE)
            failpoint("score:parquet-written")  # a partial list folder, for the fault tests
            frame = listing if engine.in_process else _head(folder / LIST_FILE, limit, fits)
            if fits:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                write_csv(round_for_people(table), folder / CSV_FILE)
            else:
                job.progress(f"no {CSV_FILE}: {rows:,} rows > csv_max_rows ({limit:,})")
            (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
            if fits:
                selected = frame[frame["selected"]]
            else:
                chosen = [("selected", "==", True)]
                selected = pq.read_table(folder / LIST_FILE, filters=chosen).to_pandas()
            finish_folder(folder, job, selected)
    except OSError as error:  # nothing partial is left: the temporary folder is gone
        raise storage_error(error, f"write the list to {job.out}") from None
    return frame


def _head(path: Path, rows: int | None, whole: bool) -> pd.DataFrame:
    """The list written at ``path`` (its first ``rows`` rows unless ``whole``), read back."""
    if whole:
        return pd.read_parquet(path)
    batches, taken = [], 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=min(rows, 65_536)):
        batches.append(batch)
        taken += batch.num_rows
        if taken >= rows:
            break
    return pa.Table.from_batches(batches).slice(0, rows).to_pandas()


def finish_folder(folder: Path, job: ScoringJob, selected: pd.DataFrame) -> None:
    """Beside a written list: the contact sheet (the treatment group), the campaign log (not
    with pseudonymized ids, which cannot be joined back to the data), and the report the
    folder held, regenerated from the new list (or kept, without a renderer). Both engines
    call it before the swap."""
    write_contacts(contact_sheet(selected, job.playbook, job.currency), folder)
    if job.key is None:
        write_csv(campaign_log(selected, job.as_of), folder / CAMPAIGN_LOG)
    what = job.previous_report
    if what == "regenerated":
        job.render_report(folder, folder / REPORT_FILE, final_folder=job.out)
    elif what == "kept":
        shutil.copy2(job.out / REPORT_FILE, folder / REPORT_FILE)


def _log_run(out: Path, summary: dict, workspace: Path) -> str:
    with tracking.training_run("scoring", workspace, run_name=f"score {summary['as_of']}") as run:
        tracking.log_params_flat(
            {"as_of": summary["as_of"], "data_fingerprint": summary["data_fingerprint"],
             **{f"{f}_version": m["version"] for f, m in summary["models"].items()}}
        )  # fmt: skip
        tracking.log_metrics_prefixed({**summary["counts"], **summary["totals"]}, "list")
        if summary["drift"].get("max_psi") is not None:
            tracking.log_metrics_prefixed({"max_psi": summary["drift"]["max_psi"]}, "drift")
        import mlflow

        mlflow.log_artifact(str(out / SUMMARY_FILE))
        mlflow.log_artifact(str(out / LIST_FILE))
        return run.info.run_id


def score(
    as_of: date | None = None,
    *,
    workspace: str | Path = ".",
    data: object = None,
    mapping: str | Path | None = None,
    config_path: str | Path | None = None,
    out: str | Path | None = None,
    strict: bool | None = None,
    pseudonymize_ids: bool | None = None,
    capacity: int | None = None,
    budget: float | None = None,
    control_share: float | None = None,
    progress: ProgressReporter = null_progress,
    engine: str | None = None,
    spark_config: str | Path | None = None,
    render_report: ReportRenderer | None = None,
) -> ScoreResult:
    """Score every active customer at ``as_of`` and write the retention-priority list.

    Parameters
    ----------
    as_of : date, optional
        Scoring cutoff: features use events strictly before it. Default: the day after the
        last event in the data (``progress`` says so).
    workspace : str or Path, default="."
        Folder with ``retain.yaml``, ``serving/``, ``features/``, ``store/`` and ``mlruns/``.
    data : str, Path, Dataset or tables, optional
        Sources (default: ``data`` of ``retain.yaml``). A folder is relative to the current
        folder.
    mapping : str or Path, optional
        Column mapping of a data folder (default: ``mapping`` of ``retain.yaml``).
    config_path : str or Path, optional
        Scoring config (default ``serving/score.yaml``, else the packaged one).
    out : str or Path, optional
        Output folder (default ``<output>/<as_of>``).
    strict : bool, optional
        Refuse to write the list when a feature drifts (default: the config's).
    pseudonymize_ids : bool, optional
        Replace customer ids by keyed HMACs (default: the config's).
    capacity, budget : optional
        Override the config's selection bounds.
    control_share : float, optional
        Override the config's share of each action's selected customers held out as a
        control group (in [0, 1)).
    progress : callable, optional
        Progress reporter.
    engine : {"duckdb", "spark"}, optional
        Default: ``engine`` of ``retain.yaml`` (see :mod:`retain.engines`). ``spark`` scores
        on Apache Spark: the same list, with the CSV only up to ``csv_max_rows`` rows.
    spark_config : str or Path, optional
        Spark settings file replacing the ``spark`` section of ``retain.yaml``; only with
        ``engine="spark"``.
    render_report : callable, optional
        ``render_report(folder, file, final_folder=out)`` (e.g.
        :func:`retain.reports.render_report`): when the output folder holds a
        ``report.html``, it is regenerated from the new list (written in a temporary
        ``folder``; ``out`` is where it will be). Without it
        the previous report is kept as it is (``ScoreResult.report`` says which).

    Raises
    ------
    RetainError
        An unknown engine (or ``spark`` without pyspark), no champion model, as-of outside the
        data, features differing from the model's, an unwritable output folder, no active
        customers, drift with ``strict``, a control share outside [0, 1), or a campaign log
        in the data with an action the playbook does not know or campaigns on or after the
        cutoff: nothing is written.
    """
    workspace = Path(workspace)
    settings = workspace_settings(workspace, data=data, mapping=mapping, engine=engine)
    chosen = get_engine(settings.engine, workspace=workspace, config_file=spark_config)
    config = load_score_config(config_path, workspace=workspace, workspace_config=settings)
    config = _overrides(config, strict, pseudonymize_ids, capacity, budget, control_share)
    check_score_config(config, options=True)  # --capacity -5, --budget nan
    playbook = load_playbook(locate(workspace, config.playbook))
    if out is not None:  # an explicit folder is checked before any model or data is read
        out = Path(out)
        _check_writable(out)
    key = pseudonym_key(config.pseudonym_key_env) if config.pseudonymize else None
    tracking.use_workspace(workspace)
    champions = load_champions({f: str(v) for f, v in config.models.items()})
    check_champions(champions, workspace, config.active_days, f"active_days in {settings.source}")
    uplift = load_uplift(config.uplift)
    progress("models loaded")
    folder = data
    if as_of is None:
        data, as_of = _default_as_of(config, data, workspace, progress)
    check_campaign_history(config, folder, workspace, playbook, as_of)
    if out is None:
        out = resolve_path(workspace, config.output) / str(as_of)
        _check_writable(out)
    margin_rate = load_config("clv", workspace=workspace, workspace_config=settings).margin_rate
    job = ScoringJob(as_of, workspace, config, playbook, champions, data, out, key, progress,
                     settings.currency, render_report, uplift, margin_rate,
                     settings.costs.rates())  # fmt: skip
    report = job.previous_report
    try:
        frame, summary = _score(job, chosen)
    finally:
        chosen.release()
    if report is not None:
        stale = " from the previous list (retain report refreshes it)" if report == "kept" else ""
        progress(f"{REPORT_FILE} {report}{stale}")
    run_id = _log_run(out, summary, workspace)
    return ScoreResult(out, frame, summary, run_id, report)


def _default_as_of(
    config: ScoreConfig, data: object, workspace: Path, progress: ProgressReporter
) -> tuple[SourceData, date]:
    """The sources (opened once, passed on to the job) and the day after their last event."""
    sources = open_store(config, workspace).sources(open_sources(config, data, workspace))
    as_of, last = default_cutoff(sources)
    progress(f"as of {as_of}, the day after the last event ({last:%Y-%m-%d %H:%M})")
    return sources, as_of


def open_inputs(job: ScoringJob) -> tuple[SourceData, FeatureStore]:
    """The job's validated sources (``as_of`` checked against them) and its feature store.

    Sources the store has read before are known by the fingerprint of their files: their
    tables are read (and checked) only if a snapshot has to be built from them.
    Call inside ``warnings.catch_warnings()`` with :class:`CutoffWarning` ignored.
    """
    store = open_store(job.config, job.workspace)
    sources = store.sources(open_sources(job.config, job.data, job.workspace))
    _check_as_of(job.as_of, sources)
    return sources, store


def check_population(champions: dict[str, Champion], columns: list[str], store) -> None:
    """Refuse to score when a model's features or view versions differ from the snapshot's."""
    for champion in champions.values():
        check_features(champion, columns, store.repository.versions)


def refuse_drift(drift: dict[str, Any], config: ScoreConfig) -> None:
    """With ``drift.strict``, refuse to write the list when a feature drifted."""
    if config.drift.strict and drift["drifted"]:
        raise RetainError(
            f"feature drift above PSI {config.drift.threshold} in {', '.join(drift['drifted'])} "
            f"(max {drift['max_psi']:.3f}); --strict refuses to write the list"
        )


def _score(job: ScoringJob, engine: Engine) -> tuple[pd.DataFrame, dict]:
    """The steps of the module docstring on ``engine``; the list (or its head) and summary."""
    config, champions = job.config, job.champions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CutoffWarning)
        sources, store = open_inputs(job)
        population = active_population(engine, sources, store, job.as_of, config.active_days)
        rows = engine.count(population)
        if rows == 0:
            raise RetainError(
                f"no active customers at {job.as_of} (none bought in the "
                f"{config.active_days} days before it)"
            )
        influence = influence_values(engine, sources, job.as_of, job.margin_rate, job.cost_rates)
        sources.release()  # the population holds what scoring needs
        job.progress(f"features of {rows:,} active customers")
        columns = engine.columns(population)
        check_population(champions, columns, store)
    vocabularies = categories(store.repository)
    churn = champions["churn"]
    limit = None if engine.in_process else DRIFT_SAMPLE_ROWS
    features = [name for name in columns if name not in (store.key, "as_of")]
    if churn.drift_reference is not None:
        wanted, typical = list(churn.drift_reference["features"]), False
    else:
        wanted, typical = features, True
    sample = engine.sample(population, wanted, limit=limit, seed=0)
    sample = with_categories(sample, vocabularies)
    drift = _drift(churn, sample, config)
    if limit is not None and rows > limit and churn.drift_reference is not None:
        drift["note"] = f"PSI on a random sample of {len(sample):,} of {rows:,} customers"
    refuse_drift(drift, config)
    explainer = build_explainer(
        churn, store.repository.path, job.currency, config.reasons,
        sample if typical else pd.DataFrame(),
    )  # fmt: skip
    models = {family: champion.model for family, champion in champions.items()}
    if job.uplift is not None:
        models["uplift"] = job.uplift["model"]
    scorer = _scorer(
        models, job.playbook,
        config, vocabularies, rows > config.exact_reasons_max_rows, explainer, influence,
    )  # fmt: skip
    scored = engine.map_batches(population, scorer, SCORED_SCHEMA)
    narrow = engine.collect(scored, RANKING_INPUTS)  # the first action on Spark: scores
    ids = narrow["customer_id"].to_numpy(dtype=object)
    risk = narrow["value_at_risk"].to_numpy(float)
    order, selection = rank_and_select(
        ids, narrow["expected_net_gain"].to_numpy(float), risk,
        narrow["action_cost"].to_numpy(float), capacity=config.capacity, budget=config.budget,
    )  # fmt: skip
    actions = narrow["recommended_action"].to_numpy(dtype=object)
    position = np.empty(len(ids), dtype=np.int64)
    position[order] = np.arange(len(ids))  # the blocks of the control draw follow the ranks
    groups = hold_out(ids, actions, selection.chosen, config.control_share, config.seed,
                      job.as_of, position, narrow["churn_probability"].to_numpy(float))  # fmt: skip
    listing = engine.rank(scored, ids, order, selection.chosen, LIST_COLUMNS, groups)
    if job.key is not None:
        listing = engine.map_batches(listing, _pseudonymizer(job.key))
    counted = _tallies(engine.tallies(listing), selection, risk, groups, actions, job)
    job.progress("scored, explained and ranked")
    summary = _summary(
        counted, job.as_of, champions, store, sources, drift, config, job.key is not None,
        explainer, job,
    )  # fmt: skip
    return _write(job, engine, listing, summary, rows), summary


def _scorer(
    models: dict[str, Any],
    playbook: Playbook,
    config: ScoreConfig,
    vocabularies: dict[str, list[str]],
    approximate: bool,
    explainer: Explainer,
    influence: pd.Series | None = None,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """:func:`score_batch` over batches of plain rows (attributes made categorical first); on
    Spark it runs in the Python workers, so everything it needs is in its closure."""
    columns = SCORED_SCHEMA.names

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            population = with_categories(batch.reset_index(drop=True), vocabularies)
            scored = score_batch(
                population, models, playbook, config, approximate=approximate,
                explainer=explainer, influence=influence,
            )  # fmt: skip
            yield scored[columns]

    return score_batches


def _pseudonymizer(key: bytes) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Customer ids replaced by keyed HMACs, batch by batch (after ranking)."""

    def pseudonymized(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield batch.assign(customer_id=pseudonymize(batch["customer_id"], key))

    return pseudonymized


def _overrides(
    config: ScoreConfig, strict, pseudonymize_ids, capacity, budget, control_share=None
) -> ScoreConfig:
    import dataclasses

    changes: dict[str, Any] = {}
    if strict is not None:
        changes["drift"] = dataclasses.replace(config.drift, strict=strict)
    if pseudonymize_ids is not None:
        changes["pseudonymize"] = pseudonymize_ids
    if capacity is not None:
        changes["capacity"] = capacity
    if budget is not None:
        changes["budget"] = budget
    if control_share is not None:
        changes["control_share"] = control_share
    return dataclasses.replace(config, **changes)
