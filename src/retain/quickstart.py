"""``retain quickstart``: the main job end to end on simulated data, with progress.

Stages run in order and each one's output feeds the next (simulate → validate → ...). Stages of
later milestones join the chain as they land; the chain itself has no loops or branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retain.progress import console

__all__ = ["QuickstartResult", "run_quickstart"]


@dataclass(frozen=True)
class QuickstartResult:
    """Paths produced by a quickstart run."""

    data_dir: Path
    summary: dict


def run_quickstart(workspace: Path, customers: int = 20_000, seed: int = 0) -> QuickstartResult:
    """Simulate a retail world into ``workspace/data/simulated`` and validate it.

    Parameters
    ----------
    workspace : Path
        Folder that receives ``data/`` (and, as later stages land, ``store/``, ``mlruns/`` and
        ``serving/output/``).
    customers : int, default=20_000
        Number of simulated customers.
    seed : int, default=0
        Random seed: the same seed gives the same data, features, models and list.
    """
    from retain.data import load_dataset, print_summary, summarize
    from retain.data.simulator import PROGRESS_STEPS, simulate_world, write_world
    from retain.progress import progress_bar

    data_dir = Path(workspace) / "data" / "simulated"
    console.rule("[bold]1/2 simulate")
    with progress_bar("simulate", total=PROGRESS_STEPS) as report:
        world = simulate_world(customers, seed=seed, progress=report)
        write_world(world, data_dir)
    console.print(f"wrote {data_dir}")

    console.rule("[bold]2/2 validate")
    dataset = load_dataset(data_dir)
    summary = summarize(dataset)
    print_summary(summary)
    console.print(
        f"\n[green]done.[/green] Data in {data_dir}. Next: "
        f"[bold]retain features build --data {data_dir} --as-of 2025-10-01[/bold]"
    )
    return QuickstartResult(data_dir=data_dir, summary=summary)
