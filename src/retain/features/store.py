"""The snapshot store: one Parquet file per cutoff, a manifest beside it, and a registry.

Layout::

    STORE/registry.json                                  every view version ever built
    STORE/sources/<fingerprint>.json                     sources read and checked: notes, span
    STORE/sources/<fingerprint>/sources.duckdb           canonical sources, staged once
    STORE/snapshots/as_of=YYYY-MM-DD/<snapshot_id>.parquet
    STORE/snapshots/as_of=YYYY-MM-DD/<snapshot_id>.json  manifest

``snapshot_id`` hashes the view versions, the source fingerprint, the cutoff and the engine's
semantics version, so an unchanged snapshot is found and skipped, and a changed definition or
source gets a new file. Files are written atomically; the manifest is written last and marks a
snapshot complete.

Snapshots are built by an engine (:mod:`retain.engines`): DuckDB by default (the sources
staged as ``sources/<fingerprint>/sources.duckdb``), or Spark (sources staged as Parquet in
``STORE/sources/<fingerprint>-parquet/`` on a local master); each engine names what it stages
under ``STORE/sources/``. Every engine runs the same compiled views and gives the same values;
the snapshot id does not depend on the engine, so a snapshot built by one engine is found, and
not built again, by another (the manifest says which built it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

import retain
from retain.atomic import atomic_file
from retain.engines import Connection, Engine, get_engine
from retain.errors import StorageError
from retain.features.definitions import Attribute
from retain.features.engine import DEFAULT_STRATEGY, Strategy, as_dates, iter_snapshots
from retain.features.inputs import SourceData, check_cutoffs, resolve_data
from retain.features.repository import Repository, load_repository
from retain.progress import ProgressReporter, null_progress

__all__ = ["ENGINE_VERSION", "BuildResult", "FeatureStore", "SnapshotInfo"]

#: Bumped when the compiled meaning of a definition changes: every snapshot id changes with it.
ENGINE_VERSION = 1
#: Version of the records of checked sources (``sources/<fingerprint>.json``).
RECORD_FORMAT = 2


@dataclass(frozen=True)
class SnapshotInfo:
    """A built snapshot, as described by its manifest."""

    snapshot_id: str
    as_of: date
    path: Path
    manifest: dict

    @property
    def rows(self) -> int:
        """Number of entities in the snapshot."""
        return int(self.manifest["rows"])

    @property
    def views(self) -> dict[str, str]:
        """View name to the version it was built with."""
        return dict(self.manifest["views"])


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did for one cutoff."""

    as_of: date
    snapshot_id: str
    path: Path
    rows: int
    features: int
    built: bool
    seconds: float


class FeatureStore:
    """Point-in-time snapshots of a feature repository, built once per definition and source.

    Parameters
    ----------
    root : str or Path, default="store"
        Store folder (created on the first build).
    repository : Repository, str or Path, default="features"
        The views, or the folder to load them from.

    Raises
    ------
    StorageError
        ``root`` (or a folder above it) is a file.
    """

    def __init__(
        self, root: str | Path = "store", repository: Repository | str | Path = "features"
    ):
        self.root = Path(root)
        for folder in (self.root, *self.root.parents):  # a file in the way: say so up front
            if folder.exists():
                if not folder.is_dir():
                    raise StorageError(
                        f"store {self.root}: {folder} is a file, not a folder; choose another "
                        "--store"
                    )
                break
        self.repository = (
            repository if isinstance(repository, Repository) else load_repository(repository)
        )

    @property
    def key(self) -> str:
        """The entity join key of the repository."""
        return self.repository.views[0].entity.join_key

    def snapshot_id(self, as_of: date, fingerprint: str) -> str:
        """The id a snapshot of the current definitions on ``fingerprint`` at ``as_of`` has."""
        identity = {
            "views": self.repository.versions,
            "fingerprint": fingerprint,
            "as_of": as_of.isoformat(),
            "engine": ENGINE_VERSION,
        }
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def snapshot_path(self, as_of: date, snapshot_id: str) -> Path:
        """Parquet path of a snapshot (its manifest has the same stem, ``.json``)."""
        return self.root / "snapshots" / f"as_of={as_of.isoformat()}" / f"{snapshot_id}.parquet"

    def build(
        self,
        data: object,
        as_of: date | str | Sequence[date | str],
        *,
        mapping: object = None,
        strategy: Strategy = DEFAULT_STRATEGY,
        progress: ProgressReporter = null_progress,
        engine: Engine | str | None = None,
    ) -> list[BuildResult]:
        """Build the snapshots missing at the cutoffs ``as_of``; skip those already built.

        Parameters
        ----------
        data : str, Path, Dataset, SourceData or mapping of DataFrames
            The sources (see :func:`retain.features.inputs.resolve_data`).
        as_of : date, str or sequence of them
            Cutoffs (``YYYY-MM-DD``).
        mapping : path or dict, optional
            Column mapping when ``data`` is a folder.
        strategy : {"per_cutoff", "joined"}, default="per_cutoff"
            How several cutoffs are computed (see :mod:`retain.features.engine`).
        progress : callable, optional
            Called once per cutoff.
        engine : Engine or str, optional
            Where missing snapshots are computed (an engine, or its name for
            :func:`~retain.engines.get_engine`; default DuckDB). The same definitions on the
            same data give the same snapshot (and the same id) on every engine, so a snapshot
            already built by one is not built again by another.

        Returns
        -------
        list of BuildResult
            One per cutoff, in date order.

        Raises
        ------
        CutoffError
            Before anything is written, when a cutoff has no events before it.
        RetainError
            An engine whose libraries are not installed (before any data are read).
        """
        if engine is None or isinstance(engine, str):
            engine = get_engine(engine)
        cutoffs = as_dates(as_of)
        sources = self.sources(data, mapping)
        check_cutoffs(cutoffs, sources)
        results: dict[date, BuildResult] = {}
        missing = []
        for cutoff in cutoffs:
            found = self.find(cutoff, sources.fingerprint)
            if found is None:
                missing.append(cutoff)
            else:
                results[cutoff] = self._result(found, built=False, seconds=0.0)
                progress(f"{cutoff} unchanged")
        if missing:
            staging = self.root / "sources"
            with engine.connect(sources, staging, len(missing)) as connection:
                built = self._build_missing(connection, sources, missing, strategy, progress)
                for result in built:
                    results[result.as_of] = result
            self._register()
        self._remember(sources)
        return [results[cutoff] for cutoff in cutoffs]

    def sources(self, data: object, mapping: object = None) -> SourceData:
        """The sources of ``data`` (see :func:`~retain.features.inputs.resolve_data`), with
        what this store recorded when it last read the same files: their notes and event range.

        A data folder is fingerprinted from the bytes of its files, and the store keeps a
        record (``sources/<fingerprint>.json``) of every folder whose tables it has read and
        checked, so a run on the same files finds their snapshots, checks its cutoffs and
        reports their notes without reading a table.
        """
        sources = resolve_data(data, mapping)
        if not sources.loaded:
            record = self._record_of(sources.fingerprint)
            if record is not None:
                sources.recall(record)
        return sources

    def _record_path(self, fingerprint: str) -> Path:
        return self.root / "sources" / f"{fingerprint}.json"

    def _record_of(self, fingerprint: str) -> dict | None:
        """The record of sources with ``fingerprint``, if this version of retain wrote it."""
        path = self._record_path(fingerprint)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        current = (
            record.get("format") == RECORD_FORMAT and record.get("retain") == retain.__version__
        )
        return record if current and record.get("fingerprint") == fingerprint else None

    def _remember(self, sources: SourceData) -> None:
        """Record loaded (so checked) sources, once per fingerprint."""
        if not sources.loaded or self._record_of(sources.fingerprint) is not None:
            return
        record = {"format": RECORD_FORMAT, "retain": retain.__version__, **sources.record()}
        with atomic_file(self._record_path(sources.fingerprint)) as temporary:
            temporary.write_text(json.dumps(record, indent=2) + "\n")

    def _build_missing(
        self, connection: Connection, sources, cutoffs, strategy, progress
    ) -> list[BuildResult]:
        engine = {**connection.details, "strategy": strategy}
        results = []
        started = time.perf_counter()
        snapshots = iter_snapshots(
            self.repository, connection, cutoffs, strategy=strategy,
            margin_rate=sources.margin_rate,
        )  # fmt: skip
        for cutoff, table in snapshots:
            seconds = time.perf_counter() - started
            info = self._write(cutoff, table, sources.fingerprint, seconds, engine)
            del table  # not held while the next cutoff is computed (0.45 GB at 1M customers)
            results.append(self._result(info, built=True, seconds=seconds))
            progress(f"{cutoff} built")
            started = time.perf_counter()
        return results

    def _write(
        self, cutoff: date, table: pa.Table, fingerprint: str, seconds, engine: dict
    ) -> SnapshotInfo:
        snapshot_id = self.snapshot_id(cutoff, fingerprint)
        path = self.snapshot_path(cutoff, snapshot_id)
        with atomic_file(path) as temporary:
            pq.write_table(table, temporary, compression="zstd")
        manifest = self._manifest(cutoff, snapshot_id, table, fingerprint, seconds, engine)
        with atomic_file(path.with_suffix(".json")) as temporary:
            temporary.write_text(json.dumps(manifest, indent=2) + "\n")
        return SnapshotInfo(snapshot_id, cutoff, path, manifest)

    def _manifest(self, cutoff, snapshot_id, table, fingerprint, seconds, engine: dict) -> dict:
        return {
            "snapshot_id": snapshot_id,
            "as_of": cutoff.isoformat(),
            "entity": self.key,
            "views": self.repository.versions,
            "features": list(self.repository.feature_names),
            "categories": categories(self.repository),
            "source_fingerprint": fingerprint,
            "rows": table.num_rows,
            "columns": table.num_columns,
            "build_seconds": round(seconds, 3),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "engine": {
                "backend": engine["backend"],
                "strategy": engine["strategy"],
                "semantics": ENGINE_VERSION,
                "retain": retain.__version__,
                "ibis": ibis.__version__,
                **{k: v for k, v in engine.items() if k not in ("backend", "strategy")},
            },
        }

    def _result(self, info: SnapshotInfo, *, built: bool, seconds: float) -> BuildResult:
        features = len(info.manifest["features"])
        return BuildResult(
            info.as_of, info.snapshot_id, info.path, info.rows, features, built, seconds
        )

    def find(self, as_of: date, fingerprint: str | None = None) -> SnapshotInfo | None:
        """The snapshot of the current definitions at ``as_of`` (on ``fingerprint`` if given).

        Without a fingerprint, the most recently built matching snapshot is returned.
        """
        if fingerprint is not None:
            snapshot_id = self.snapshot_id(as_of, fingerprint)
            path = self.snapshot_path(as_of, snapshot_id)
            return self.info_at(path) if path.with_suffix(".json").is_file() else None
        current = [info for info in self.snapshots(as_of) if self.is_current(info)]
        return max(current, key=lambda info: info.manifest["built_at"], default=None)

    def snapshots(self, as_of: date | None = None) -> list[SnapshotInfo]:
        """Every complete snapshot in the store (at ``as_of`` if given), by date then time."""
        pattern = f"as_of={as_of.isoformat()}/*.json" if as_of else "as_of=*/*.json"
        infos = []
        for manifest in (self.root / "snapshots").glob(pattern):
            parquet = manifest.with_suffix(".parquet")
            if parquet.is_file():
                infos.append(self.info_at(parquet))
        return sorted(infos, key=lambda info: (info.as_of, info.manifest["built_at"]))

    def is_current(self, info: SnapshotInfo) -> bool:
        """Whether a snapshot was built with the repository's current definitions."""
        return info.views == self.repository.versions and (
            info.manifest["engine"]["semantics"] == ENGINE_VERSION
        )

    @staticmethod
    def info_at(path: Path) -> SnapshotInfo:
        """The snapshot whose Parquet file is ``path`` (read from its manifest)."""
        manifest = json.loads(path.with_suffix(".json").read_text())
        return SnapshotInfo(
            manifest["snapshot_id"], date.fromisoformat(manifest["as_of"]), path, manifest
        )

    def _register(self) -> None:
        """Record the current view versions and their definitions in ``registry.json``."""
        path = self.root / "registry.json"
        registry = json.loads(path.read_text()) if path.is_file() else {"views": {}}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for view in self.repository.views:
            versions = registry["views"].setdefault(view.name, {})
            if view.version not in versions:
                versions[view.version] = {"first_built": now, "definition": view.spec()}
        with atomic_file(path) as temporary:
            temporary.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")

    def registry(self) -> dict:
        """The registry: every view version built into this store, with its definition."""
        path = self.root / "registry.json"
        return json.loads(path.read_text()) if path.is_file() else {"views": {}}


def categories(repository: Repository) -> dict[str, list[str]]:
    """Attribute name to its encoding vocabulary (declared categories, then ``"other"``)."""
    return {
        feature.name: [*feature.categories, Attribute.OTHER]
        for view in repository.views
        for feature in view.features
        if isinstance(feature, Attribute) and feature.categories is not None
    }
