"""Shared fixtures: a fixed seed and one small simulated world built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

SEED = 7
SMALL_WORLD_CUSTOMERS = 3_000


@pytest.fixture(scope="session")
def seed() -> int:
    return SEED


@pytest.fixture(scope="session")
def world(seed):
    """A simulated retail world of a few thousand customers (the real simulator, in memory)."""
    from retain.data.simulator import simulate_world

    return simulate_world(SMALL_WORLD_CUSTOMERS, seed=seed)


@pytest.fixture(scope="session")
def world_dir(world, tmp_path_factory) -> Path:
    """The same world written to a data folder in the data contract (read-only for tests)."""
    from retain.data.simulator import write_world

    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out
