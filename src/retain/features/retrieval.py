"""One retrieval call for training and scoring: features of the current definitions at cutoffs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.errors import RetainError
from retain.features.engine import DEFAULT_STRATEGY, Strategy, as_dates
from retain.features.repository import Repository
from retain.features.store import FeatureStore, SnapshotInfo, categories

__all__ = ["categorical", "get_features", "with_categories"]


def get_features(
    as_of: date | str | Sequence[date | str],
    customers: Iterable[str] | None = None,
    *,
    store: str | Path | FeatureStore = "store",
    data: object = None,
    mapping: object = None,
    repo: Repository | str | Path = "features",
    views: Iterable[str] | None = None,
    as_categorical: bool = False,
    strategy: Strategy = DEFAULT_STRATEGY,
) -> pd.DataFrame:
    """Features of the current definitions at one or more cutoffs, from the snapshot store.

    Training asks for past cutoffs, scoring for today: the same call, the same code path. With
    ``data``, missing snapshots are built first (and unchanged ones reused); without it, the
    most recent snapshot built from the current definitions is read.

    Parameters
    ----------
    as_of : date, str or sequence of them
        Cutoff(s), ``YYYY-MM-DD``; features use events strictly before the cutoff.
    customers : iterable of str, optional
        Only these customers (those not known at a cutoff are simply absent).
    store : str, Path or FeatureStore, default="store"
        Snapshot store folder.
    data : str, Path, Dataset or mapping of DataFrames, optional
        Sources to build missing snapshots from.
    mapping : path or dict, optional
        Column mapping when ``data`` is a folder.
    repo : Repository, str or Path, default="features"
        Feature repository (ignored when ``store`` is a FeatureStore).
    views : iterable of str, optional
        Only the features of these views (default: all).
    as_categorical : bool, default=False
        Encode attributes with a vocabulary as pandas categoricals with the declared categories
        plus ``"other"``, identical for every cutoff (see :func:`categorical`).
    strategy : {"per_cutoff", "joined"}, default="per_cutoff"
        How missing snapshots at several cutoffs are computed.

    Returns
    -------
    pandas.DataFrame
        Columns: key, ``as_of``, features; rows ordered by cutoff, then key.

    Raises
    ------
    RetainError
        Without ``data``, when a cutoff has no snapshot of the current definitions.
    """
    store = store if isinstance(store, FeatureStore) else FeatureStore(store, repo)
    cutoffs = as_dates(as_of)
    if data is not None:
        built = store.build(data, cutoffs, mapping=mapping, strategy=strategy)
        infos = [store.info_at(result.path) for result in built]
    else:
        infos = [_built_snapshot(store, cutoff) for cutoff in cutoffs]
    columns = _columns(store, views)
    wanted = None if customers is None else pa.array(list(customers), pa.string())
    parts = [_read(info.path, columns, store.key, wanted) for info in infos]
    frame = pa.concat_tables(parts).to_pandas()
    return categorical(frame, store.repository) if as_categorical else frame


def _built_snapshot(store: FeatureStore, cutoff: date) -> SnapshotInfo:
    info = store.find(cutoff)
    if info is None:
        raise RetainError(
            f"no snapshot at {cutoff} of the current feature definitions in {store.root}; build "
            f"it with `retain features build --data DIR --as-of {cutoff}` or pass data="
        )
    return info


def _columns(store: FeatureStore, views: Iterable[str] | None) -> list[str]:
    repository = store.repository.select(views)
    return [store.key, "as_of", *repository.feature_names]


def _read(path: Path, columns: list[str], key: str, wanted: pa.Array | None) -> pa.Table:
    filters = None if wanted is None else [(key, "in", wanted)]
    return pq.read_table(path, columns=columns, filters=filters)


def categorical(frame: pd.DataFrame, repository: Repository) -> pd.DataFrame:
    """Attributes with a declared vocabulary as categoricals with fixed categories.

    The categories are the view's declared vocabulary followed by ``"other"``, so their codes
    are the same in every snapshot: a model trained on one cutoff scores another consistently.
    Missing values stay missing.
    """
    return with_categories(frame, categories(repository))


def with_categories(frame: pd.DataFrame, vocabularies: Mapping[str, list[str]]) -> pd.DataFrame:
    """A copy of ``frame`` with each column named in ``vocabularies`` (see
    :func:`retain.features.store.categories`) a categorical of that vocabulary: what
    :func:`categorical` does, from the vocabularies alone (for functions pickled to workers)."""
    frame = frame.copy(deep=False)  # copy-on-write: the caller's columns stay as they are
    for name, vocabulary in vocabularies.items():
        if name in frame.columns:
            frame[name] = pd.Categorical(frame[name], categories=vocabulary)
    return frame
