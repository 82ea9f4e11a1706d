"""Model files are verified before they are unpickled.

Registered models are pickles (cloudpickle): loading one runs whatever code its bytes say.
Whoever can write the artifact store (the ``mlruns/`` folder, a shared bucket) could otherwise
replace ``model.pkl`` and run code on every machine that scores or trains. So:

- At registration, :func:`model_checksums` hashes every file of the logged model (SHA-256) and
  the registry keeps them as the version tag :data:`CHECKSUM_TAG`: the registry (a database)
  and the artifact store (files) are separate, and changing one does not change the other.
- Before loading, :func:`verified_copy` downloads the version's files to a private temporary
  folder, compares every file with the recorded checksums (a changed, missing or added file is
  refused with a :class:`~retain.errors.ModelFileError`), and the model is unpickled from
  that verified copy, never from the store itself.
- Models are unpickled only from a trusted registry (:func:`check_trusted`): a workspace's own
  store (``<workspace>/mlruns/mlflow.db``), or a tracking server named in
  ``RETAIN_TRUSTED_REGISTRY`` (comma separated URIs).

What this does not protect against: whoever can write the registry database (or the tracking
server) can register a model of their own with matching checksums, and whoever can write the
Python environment can change retain itself. See the README, "Model files".
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from retain.atomic import failpoint
from retain.errors import ModelFileError, shorten

__all__ = [
    "CHECKSUM_TAG",
    "TRUST_ENV",
    "check_trusted",
    "checksum_tag",
    "file_checksums",
    "is_workspace_store",
    "model_checksums",
    "verified_copy",
]

#: Model version tag holding ``{"files": {relative path: sha256}}`` as JSON.
CHECKSUM_TAG = "retain.model_sha256"
#: Tracking/registry URIs whose models may be unpickled, besides workspaces' own stores.
TRUST_ENV = "RETAIN_TRUSTED_REGISTRY"
#: Written by MLflow into every downloaded registered model (its name and version): not part
#: of what was registered, and not code.
_MLFLOW_META = "registered_model_meta"
_WORKSPACE_STORE = "/mlruns/mlflow.db"


def file_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """SHA-256 (hex) of every file under ``folder``, by relative POSIX path.

    Raises
    ------
    ModelFileError
        The folder holds a symbolic link (a model's files are plain files).
    """
    root = Path(folder)
    checksums = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise ModelFileError(f"model file {relative} is a symbolic link")
        if not path.is_file() or relative == _MLFLOW_META:
            continue
        with path.open("rb") as handle:
            checksums[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
    return checksums


def model_checksums(model_uri: str) -> dict[str, str]:
    """Checksums of the files of a logged model (e.g. ``models:/m-<id>``), as stored."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="retain-model-") as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder)
        checksums = file_checksums(local)
    failpoint("modelfiles:hashed")  # logged, not yet registered
    return checksums


def checksum_tag(checksums: Mapping[str, str]) -> str:
    """The value of :data:`CHECKSUM_TAG` for ``checksums``."""
    return json.dumps({"files": dict(sorted(checksums.items()))}, separators=(",", ":"))


def _recorded(tags: Mapping[str, str], label: str, retrain: str) -> dict[str, str]:
    text = tags.get(CHECKSUM_TAG)
    if text is None:
        raise ModelFileError(
            f"{label} was registered without file checksums (by a retain before they were "
            f"recorded), so its files cannot be verified before loading; train it again "
            f"(`{retrain}`)"
        )
    try:
        files = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(f"{label}: the tag {CHECKSUM_TAG} is not readable") from None
    if not isinstance(files, dict) or not files:
        raise ModelFileError(f"{label}: the tag {CHECKSUM_TAG} lists no files")
    return {str(name): str(digest) for name, digest in files.items()}


@contextmanager
def verified_copy(
    model_uri: str, tags: Mapping[str, str], *, label: str, retrain: str
) -> Iterator[Path]:
    """Download a registered model to a private folder and yield it once its files are verified.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>/<version>``.
    tags : mapping
        The version's tags (with :data:`CHECKSUM_TAG`).
    label : str
        The model in messages (``"retain-churn v3"``).
    retrain : str
        The command that trains it again, for messages.

    Raises
    ------
    ModelFileError
        No checksums recorded, or a file changed, missing or added since registration.
    """
    import mlflow

    expected = _recorded(tags, label, retrain)
    with tempfile.TemporaryDirectory(prefix="retain-model-") as folder:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder))
        found = file_checksums(local)
        changed = sorted(n for n in set(expected) & set(found) if found[n] != expected[n])
        missing = sorted(set(expected) - set(found))
        added = sorted(set(found) - set(expected))
        if changed or missing or added:
            problems = [
                f"{what} {', '.join(shorten(name, 60) for name in names[:5])}"
                for what, names in (("changed:", changed), ("missing:", missing),
                                    ("added:", added)) if names
            ]  # fmt: skip
            raise ModelFileError(
                f"{label}: its files differ from those registered ({'; '.join(problems)}); "
                f"refusing to load it. Someone or something changed the model store: restore "
                f"the files, or train the model again (`{retrain}`)"
            )
        yield local


def is_workspace_store(uri: str) -> bool:
    """Whether ``uri`` is a workspace's own store, ``sqlite:///<folder>/mlruns/mlflow.db``."""
    return uri.startswith("sqlite:///") and uri.endswith(_WORKSPACE_STORE)


def _trusted() -> set[str]:
    values = os.environ.get(TRUST_ENV, "").split(",")
    return {value.strip().rstrip("/") for value in values if value.strip()}


def check_trusted(registry_uri: str) -> None:
    """Refuse to unpickle models from a registry that is neither a workspace's own store nor
    named in ``RETAIN_TRUSTED_REGISTRY``.

    Raises
    ------
    ModelFileError
        Naming the registry and the setting that trusts it.
    """
    if is_workspace_store(registry_uri) or registry_uri.rstrip("/") in _trusted():
        return
    raise ModelFileError(
        f"models of the registry {shorten(registry_uri, 200)} are not trusted: loading a model "
        f"runs code its files contain. If that server is yours, trust it with "
        f"{TRUST_ENV}={shorten(registry_uri, 200)} (comma separated for several)"
    )
