"""Load a feature repository: a folder of ``*.py`` files holding feature-view definitions.

Each file is imported by path (never as a package: the engine does not import from the
top-level folders) and every :class:`FeatureView` it defines at module level is collected.
All views are validated together, so a bad definition fails here, naming the view and feature,
before any data is read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retain.errors import ConfigError
from retain.features.definitions import BTYDSummary, FeatureView, Tenure

__all__ = ["Repository", "age_features", "check_views", "load_repository"]


@dataclass(frozen=True)
class Repository:
    """The validated feature views of a repository.

    Parameters
    ----------
    views : tuple of FeatureView
        Views sorted by name.
    path : Path or None
        Folder the views were loaded from (``None`` when built in code).
    """

    views: tuple[FeatureView, ...]
    path: Path | None = None

    @property
    def versions(self) -> dict[str, str]:
        """View name to version."""
        return {view.name: view.version for view in self.views}

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every feature column, view by view."""
        return tuple(name for view in self.views for name in view.feature_names)

    def view(self, name: str) -> FeatureView:
        """The view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def select(self, names: Iterable[str] | None) -> Repository:
        """The repository restricted to the views in ``names`` (all when ``None``)."""
        if names is None:
            return self
        names = list(names)
        unknown = [name for name in names if name not in self.versions]
        if unknown:
            raise ConfigError(f"unknown feature views {unknown}; known: {sorted(self.versions)}")
        return Repository(tuple(v for v in self.views if v.name in names), self.path)

    @classmethod
    def from_views(cls, views: Sequence[FeatureView]) -> Repository:
        """Validate views defined in code and wrap them (raises :class:`ConfigError`)."""
        check_views(views)
        return cls(tuple(sorted(views, key=lambda view: view.name)))


def check_views(views: Sequence[FeatureView]) -> None:
    """Raise one :class:`ConfigError` listing every problem of ``views``.

    Checks each view against its source schema, and that view names and feature names are
    unique across the repository.
    """
    problems = []
    for view in views:
        if not isinstance(view, FeatureView):
            problems.append(f"{view!r} is not a FeatureView")
            continue
        problems += view.problems()
    view_names = Counter(view.name for view in views if isinstance(view, FeatureView))
    problems += [
        f"view name {name!r} is defined {n} times" for name, n in view_names.items() if n > 1
    ]
    owners: dict[str, list[str]] = {}
    for view in views:
        if isinstance(view, FeatureView):
            for name in view.feature_names:
                owners.setdefault(name, []).append(view.name)
    for name, in_views in sorted(owners.items()):
        if len(in_views) > 1:
            problems.append(f"feature {name!r} is defined more than once (views {in_views})")
    if problems:
        raise ConfigError("invalid feature definitions:\n  - " + "\n  - ".join(problems))


def load_repository(path: str | Path = "features") -> Repository:
    """Import every ``*.py`` file of ``path`` and return its validated views.

    Parameters
    ----------
    path : str or Path, default="features"
        The feature repository folder.

    Returns
    -------
    Repository

    Raises
    ------
    ConfigError
        If the folder is missing, a file fails to import, no view is defined, or a definition
        is invalid (the message names the view and feature).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"no feature repository at {folder} (a folder of feature-view .py files)")
    views: list[FeatureView] = []
    for file in sorted(folder.glob("*.py")):
        if not file.name.startswith("_"):
            views += _views_in(file)
    if not views:
        raise ConfigError(f"no FeatureView is defined in {folder}/*.py")
    check_views(views)
    return Repository(tuple(sorted(views, key=lambda view: view.name)), folder)


def _views_in(file: Path) -> list[FeatureView]:
    """Import ``file`` under a private module name and collect its module-level views."""
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]
    module_name = f"_retain_feature_repo_{digest}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import feature definitions from {file}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        raise
    except Exception as error:  # a definition file is user code: report, don't crash
        raise ConfigError(f"{file}: {type(error).__name__}: {error}") from error
    finally:
        sys.modules.pop(module_name, None)
    found = {id(v): v for v in vars(module).values() if isinstance(v, FeatureView)}
    return list(found.values())  # a view bound to two names is one view


def age_features(views: Iterable) -> list[str]:
    """Features that grow with time by construction: tenures and BTYD ``T`` and ``recency``.

    Parameters
    ----------
    views : iterable of FeatureView, or a Repository
        Feature definitions (a repository's ``views``).
    """
    views = getattr(views, "views", views)
    names = []
    for view in views:
        for feature in view.features:
            if isinstance(feature, Tenure):
                names.append(feature.name)
            elif isinstance(feature, BTYDSummary):
                names.extend((feature.recency, feature.T))
    return names
