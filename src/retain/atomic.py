"""Write outputs atomically, and never replace what retain did not write.

:func:`atomic_file` and :func:`atomic_dir` write to a temporary sibling first and move it into
place on success, so an interrupted or failed run never leaves a half-written file or folder,
and the previous version stays intact until the new one is complete.

Replacing is allowed only for what retain wrote itself:

- a folder :func:`atomic_dir` replaces must be absent, empty, or one it wrote for the same
  purpose: it carries the marker file :data:`MARKER` (``{"kind": "list", "files": [...]}``)
  and holds nothing else than the files the marker lists (a file retain adds to such a folder
  later, e.g. ``report.html``, is added to the list with :func:`claim`). A folder of the same
  kind written before markers existed is recognised by its file names (``legacy_files``).
  Anything else -- a file, a symbolic link, the working folder or a folder above it, a folder
  with other files -- is refused with an :class:`~retain.errors.OutputError`, before any work.
- a file is replaced only when :func:`check_output_file` recognises it as retain's.

The swap of a folder is one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux: at every instant
the path holds the old folder or the new one. Elsewhere it is two renames; a run killed between
them leaves the previous folder at ``.NAME.old.HOST.PID``, which the next run into the same path
puts back. Temporary folders of killed runs (``.NAME.tmp.HOST.PID.XXXX``) are removed by the
next run into the same path (when their process is gone). Swaps into one folder are serialised
by a lock on the parent folder, so concurrent runs each leave a complete folder.

Test hook: with ``RETAIN_FAILPOINT=<name>`` in the environment, the process kills itself
(``SIGKILL``) at the named point (:func:`failpoint`), so tests can interrupt a run between
any two steps.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from retain.errors import OutputError, shorten

__all__ = [
    "MARKER",
    "atomic_dir",
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "claim",
    "failpoint",
]

#: The file that marks a folder as written by retain (and says for what, and with which files).
MARKER = ".retain-output.json"
FAILPOINT_ENV = "RETAIN_FAILPOINT"
#: A temporary folder of another machine (shared mount) is removed only after this long.
FOREIGN_STALE_SECONDS = 24 * 3600
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"


def failpoint(name: str) -> None:
    """Kill this process with ``SIGKILL`` when ``RETAIN_FAILPOINT`` names this point (tests)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- files


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    For retain's own files (the store, a folder it owns); a user-named file is checked first
    with :func:`check_output_file`.

    Parameters
    ----------
    path : path-like
        Final destination. Its parent folder is created if needed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.tmp.{_HOST}.{os.getpid()}.", dir=target.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        failpoint("atomic_file:complete")
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


def check_output_file(
    path: str | os.PathLike, what: str, recognise: Callable[[Path], bool] | None = None
) -> Path:
    """Refuse to write ``path`` unless it is absent or a file retain wrote.

    Parameters
    ----------
    path : path-like
        The file a command is asked to write.
    what : str
        What is written there, for the message (``"HTML report"``).
    recognise : callable, optional
        ``recognise(path)`` tells whether an existing file is retain's ``what`` (e.g. by its
        content). Without it, a file the marker of its folder lists is taken as retain's.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputError
        ``path`` is a folder, a link, or a file retain did not write.
    """
    target = Path(path)
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link; name the file itself")
    if target.is_dir():
        raise OutputError(f"{target} is a folder; name the {what} file to write in it")
    if not target.exists():
        return target
    if recognise is not None:  # what the file holds decides (a list's summary.json is no report)
        if _safely(recognise, target):
            return target
    elif target.name in _marker(target.parent).get("files", ()):
        return target
    raise OutputError(
        f"{target} exists and is not a {what} retain wrote; choose another path (retain does "
        "not replace files it did not write)"
    )


def claim(path: str | os.PathLike) -> None:
    """Record a file retain wrote into a folder retain owns, in the folder's marker.

    A folder that carries no marker is left alone. The list of files is what makes the folder
    replaceable as a whole later (see :func:`check_output_dir`).
    """
    target = Path(path)
    marker_path = target.parent / MARKER
    if not marker_path.is_file():
        return
    with _locked(target.parent):
        marker = _marker(target.parent)
        files = sorted({*marker.get("files", ()), target.name})
        _write_marker(target.parent, {**marker, "files": files})


def _safely(recognise: Callable[[Path], bool], path: Path) -> bool:
    try:
        return bool(recognise(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return False


# --------------------------------------------------------------------------- folders


def check_output_dir(
    path: str | os.PathLike,
    kind: str,
    *,
    legacy_files: Collection[str] = (),
    replaced: bool = True,
) -> Path:
    """Refuse to replace ``path`` unless it is absent, empty or a ``kind`` folder retain wrote.

    Parameters
    ----------
    path : path-like
        The folder a command is asked to write.
    kind : str
        What the folder holds (``"list"``, ``"backtest"``, ``"staged sources"``); a folder
        retain wrote for another purpose is refused too.
    legacy_files : collection of str, optional
        File names of a ``kind`` folder written before markers existed: a folder without a
        marker holding only such files is taken as retain's.
    replaced : bool, default=True
        Whether the folder is replaced as a whole (:func:`atomic_dir`); ``False`` when files
        are written into it, which may then be the working folder.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputError
        Naming the path and why it may not be replaced.
    """
    target = Path(path)
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link; give the folder's real path")
    if not target.exists():
        return target
    if not target.is_dir():
        raise OutputError(
            f"{target} is a file, not a folder retain wrote; choose another output folder"
        )
    if replaced and Path.cwd().resolve().is_relative_to(target.resolve()):
        raise OutputError(
            f"{target} is the working folder or a folder above it; write the {kind} to a new "
            "or empty folder"
        )
    entries = sorted(
        entry.name for entry in target.iterdir() if not _MARKER_TEMPORARY.fullmatch(entry.name)
    )
    if not entries:
        return target
    marker = _marker(target)
    if marker:
        if marker.get("kind") != kind:
            raise OutputError(
                f"{target} holds a retain {marker.get('kind', 'output')}, not a {kind}; "
                "choose another folder"
            )
        foreign = [name for name in entries if name not in {MARKER, *marker.get("files", ())}]
    elif legacy_files and set(entries) <= set(legacy_files):
        foreign = []
    else:
        foreign = entries
    if foreign:
        shown = ", ".join(shorten(name, 60) for name in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(
            f"{target} holds files retain did not write ({shown}{more}); retain replaces only "
            f"a {kind} folder it wrote, or an empty one: choose a new folder"
        )
    return target


@contextmanager
def atomic_dir(
    path: str | os.PathLike, *, kind: str, legacy_files: Collection[str] = ()
) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; swap it in for ``path`` on success.

    ``path`` is checked with :func:`check_output_dir` before the block runs and again, under
    a lock, before the swap. Leftovers of killed runs into the same path are cleaned up first
    (a previous folder set aside is put back). The new folder gets the marker :data:`MARKER`
    listing its files. On failure the temporary folder is deleted and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        The folder to write.
    kind : str
        What it holds (see :func:`check_output_dir`).
    legacy_files : collection of str, optional
        See :func:`check_output_dir`.

    Raises
    ------
    OutputError
        ``path`` may not be replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    check_output_dir(target, kind, legacy_files=legacy_files)
    token = secrets.token_hex(4)
    temporary = target.with_name(f".{target.name}.tmp.{_HOST}.{os.getpid()}.{token}")
    temporary.mkdir()
    try:
        yield temporary
        files = sorted(entry.name for entry in temporary.iterdir() if entry.name != MARKER)
        _write_marker(temporary, {"kind": kind, "written_by": "retain", "files": files})
        failpoint("atomic_dir:complete")
        with _locked(target.parent):
            check_output_dir(target, kind, legacy_files=legacy_files)
            _swap(temporary, target)
    finally:
        if temporary.exists():  # the unfinished folder, or the previous one swapped out
            shutil.rmtree(temporary, ignore_errors=True)


def _swap(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; afterwards ``new`` holds the previous folder (if any)."""
    if not os.path.lexists(target):
        os.rename(new, target)
        return
    if _exchange(new, target):
        failpoint("atomic_dir:exchanged")
        return
    retired = target.with_name(f".{target.name}.old.{_HOST}.{os.getpid()}")
    os.rename(target, retired)
    failpoint("atomic_dir:set-aside")
    os.rename(new, target)
    os.rename(retired, new)  # removed with the temporary folder


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); ``False`` where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    result = function(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _recover(target: Path) -> None:
    """Clean up after killed runs into ``target``: put a previous folder set aside back (when
    ``target`` is missing), remove temporary files and folders whose process is gone."""
    prefix = f".{target.name}."
    try:
        names = [name for name in os.listdir(target.parent) if name.startswith(prefix)]
    except OSError:
        return
    if not names:
        return
    with _locked(target.parent):
        for name in sorted(names):
            leftover = target.parent / name
            kind, owner_gone = _leftover(name[len(prefix) :], leftover)
            if kind is None or not owner_gone or leftover.is_symlink():
                continue
            if kind == "old" and leftover.is_dir() and not os.path.lexists(target):
                os.rename(leftover, target)  # the previous folder, set aside by a killed swap
            elif leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.is_file():
                with contextlib.suppress(OSError):
                    leftover.unlink()


_TEMPORARY = re.compile(r"tmp\.(?P<host>[A-Za-z0-9_]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+")
_RETIRED = re.compile(r"old\.(?P<host>[A-Za-z0-9_]+)\.(?P<pid>\d+)")
_LEGACY_TEMPORARY = re.compile(r"[a-z0-9_]{8}\.tmp")  # tempfile.mkdtemp/mkstemp names before
_LEGACY_RETIRED = re.compile(r"old-(?P<pid>\d+)")
_MARKER_TEMPORARY = re.compile(re.escape(MARKER) + r"\.\d+\.tmp")


def _leftover(rest: str, path: Path) -> tuple[str | None, bool]:
    """``(kind, owner gone)`` of a leftover named ``.NAME.<rest>``; kind ``None`` if not ours."""
    for pattern, kind in ((_TEMPORARY, "tmp"), (_RETIRED, "old")):
        match = pattern.fullmatch(rest)
        if match:
            if match["host"] != _HOST:
                return kind, _older_than(path, FOREIGN_STALE_SECONDS)
            return kind, not _alive(int(match["pid"]))
    match = _LEGACY_RETIRED.fullmatch(rest)
    if match:
        return "old", not _alive(int(match["pid"]))
    if _LEGACY_TEMPORARY.fullmatch(rest):
        return "tmp", _older_than(path, 3600)
    return None, False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _marker(folder: Path) -> dict:
    """The marker of ``folder`` (empty when absent or unreadable)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _write_marker(folder: Path, marker: dict) -> None:
    temporary = folder / f"{MARKER}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, folder / MARKER)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself: no lock file)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks on folders
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
