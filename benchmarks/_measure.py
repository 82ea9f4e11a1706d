"""Measurements shared by the benchmarks: peak memory and CPU time of this process."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident set size of this process, in GiB.

    Read from ``VmHWM`` in ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` survives
    ``fork`` + ``exec``, so a worker started by a process holding 5 GB would report 5 GB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # not Linux


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: robust to other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
