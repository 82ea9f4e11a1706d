"""Measurements shared by the benchmarks: peak memory and CPU time of this process."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_gb(pid: int | str = "self") -> float:
    """Peak resident set size of a process (default this one), in GiB; 0 when it is gone.

    Read from ``VmHWM`` in ``/proc/<pid>/status``: ``getrusage``'s ``ru_maxrss`` survives
    ``fork`` + ``exec``, so a worker started by a process holding 5 GB would report 5 GB.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        if pid == "self":  # not Linux
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: robust to other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
