"""``retain train segments``: segment models fitted on the customers active at the latest cutoff.

The value tiers need each customer's predicted CLV, which comes from the champion
``retain-clv`` model, so segments train after CLV (``retain train all`` keeps that order).
The registry gate compares the silhouette of the behavioural clusters, measured for the
challenger and the champion on the same customers in the same standardised feature space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from retain.engines import Engine
from retain.errors import RetainError
from retain.features import FeatureStore, SourceData
from retain.mlflow import registry, tracking
from retain.models.segments import SegmentModel, segment_summary
from retain.progress import ProgressReporter, null_progress
from retain.training.config import SegmentsConfig
from retain.training.dataset import build_training_set
from retain.training.publish import JobResult, publish

__all__ = ["cluster_silhouette", "train_segments"]

SILHOUETTE_ROWS = 5_000
SUMMARISED = ("segment", "value_tier", "loyalty_class", "lifecycle_stage")


def cluster_silhouette(
    features: pd.DataFrame, clusters: np.ndarray, columns: list[str], seed: int = 0
) -> float:
    """Silhouette of ``clusters`` in one fixed space: log1p, median-imputed, standardised columns.

    The space depends only on ``features``, so two models' clusterings of the same customers
    are compared fairly whatever their own scaling.
    """
    values = features[columns].astype(float)
    values = values.fillna(values.median()).fillna(0.0)
    logged = np.sign(values) * np.log1p(values.abs())
    space = ((logged - logged.mean()) / logged.std(ddof=0).replace(0, 1)).to_numpy()
    labels = np.asarray(clusters)
    if len(np.unique(labels)) < 2:
        return -1.0
    rows = min(len(labels), SILHOUETTE_ROWS)
    return float(silhouette_score(space, labels, sample_size=rows, random_state=seed))


def _predicted_clv(X: pd.DataFrame) -> tuple[pd.Series, str, object]:
    try:
        model = registry.load_model("clv", registry.CHAMPION)
    except RetainError as error:
        raise RetainError(
            f"segments need predicted CLV from a champion retain-clv model: {error}"
        ) from None
    version = registry.champion("clv")
    return pd.Series(model.predict(X), index=X.index, name="clv"), str(version.version), model


def train_segments(
    config: SegmentsConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    workspace: str = ".",
    run_name: str | None = None,
    progress: ProgressReporter = null_progress,
    engine: Engine | None = None,
) -> JobResult:
    """Fit the segment models at the latest cutoff, track and register them (the rows of that
    cutoff built on ``engine``, default DuckDB, and fitted on the driver).

    Raises
    ------
    RetainError
        Bad config, no champion CLV model, no active customers.
    """
    model = SegmentModel.from_config({**config.model, "random_state": config.seed})
    tracking.use_workspace(workspace)
    population = build_training_set(
        config, sources, store, engine=engine, progress=progress, leave_out=False
    )
    rows = population.validation
    X = rows[list(population.features)].set_axis(rows["customer_id"].to_numpy())
    clv, clv_version, clv_model = _predicted_clv(X)
    progress(f"CLV from retain-clv v{clv_version}")
    assigned = model.fit(X, clv).transform(X, clv)
    columns = list(model.clusters_.columns)
    score = cluster_silhouette(X, assigned["cluster"].to_numpy(), columns, config.seed)
    progress(f"segments fitted ({model.clusters_.k_} clusters, silhouette {score:.3f})")
    return publish(
        "segments",
        model,
        config,
        {**population.manifest, "clv_model_version": clv_version},
        workspace=workspace,
        settings=model.get_params(),
        metrics={"silhouette": score, "clusters": float(model.clusters_.k_), **_shares(assigned)},
        figures={},
        tables=_tables(model, assigned, X, clv),
        score=lambda candidate: cluster_silhouette(
            X, candidate.predict(X.assign(clv=clv))["cluster"].to_numpy(), columns, config.seed
        ),
        input_example=X.head(5),
        predict_method="predict",
        run_name=run_name,
        parts={"clv": clv_model},  # its pyfunc computes CLV from a snapshot's columns
    )


def _shares(assigned: pd.DataFrame) -> dict[str, float]:
    return {
        f"share_{name}_{value}": float(share)
        for name in SUMMARISED
        for value, share in assigned[name].value_counts(normalize=True).items()
    }


def _tables(model, assigned, X, clv) -> dict[str, pd.DataFrame]:
    tables = {"segments/cluster_profile.csv": model.clusters_.profile_}
    for name in SUMMARISED:
        tables[f"segments/summary_{name}.csv"] = segment_summary(assigned, X, clv, by=name)
    return tables
