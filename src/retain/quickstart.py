"""``retain quickstart``: the main job end to end on simulated data, with progress.

Stages run in order and each one's output feeds the next: simulate → validate → features and
training (churn, CLV, segments). Scoring and the report join the chain with the batch
predictor; the chain itself has no loops or branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retain.progress import console

__all__ = ["QuickstartResult", "run_quickstart"]


@dataclass(frozen=True)
class QuickstartResult:
    """What a quickstart run produced."""

    data_dir: Path
    summary: dict
    jobs: list = field(default_factory=list)


def run_quickstart(workspace: Path, customers: int = 20_000, seed: int = 0) -> QuickstartResult:
    """Simulate a retail world, validate it, build features and train every model.

    Parameters
    ----------
    workspace : Path
        Folder that receives ``data/``, ``store/`` and ``mlruns/`` (and, as the batch predictor
        lands, ``serving/output/``); it needs the feature repository ``features/`` and reads
        ``training/*.yaml`` when present.
    customers : int, default=20_000
        Number of simulated customers.
    seed : int, default=0
        Random seed of the simulation; the training configs carry their own seed.
    """
    from retain.data import load_dataset, print_summary, summarize
    from retain.data.simulator import PROGRESS_STEPS, simulate_world, write_world
    from retain.progress import progress_bar, step_printer
    from retain.training.jobs import mlflow_ui_command, run_training

    workspace = Path(workspace)
    data_dir = workspace / "data" / "simulated"
    console.rule("[bold]1/3 simulate")
    with progress_bar("simulate", total=PROGRESS_STEPS) as report:
        world = simulate_world(customers, seed=seed, progress=report)
        write_world(world, data_dir)
    console.print(f"wrote {data_dir}")

    console.rule("[bold]2/3 validate")
    dataset = load_dataset(data_dir)
    summary = summarize(dataset)
    print_summary(summary)

    def progress(family: str):
        console.rule(f"[bold]3/3 features and training: {family}")
        return step_printer(family)

    jobs = run_training("all", workspace=workspace, data=dataset, progress=progress)
    for job in jobs:
        verdict = "champion" if job.decision.promoted else "challenger"
        console.print(f"retain-{job.family} v{job.version} ({verdict})", highlight=False)
    console.print(
        f"\n[green]done.[/green] Data in {data_dir}, models in {workspace / 'mlruns'}.\n"
        f"Runs: [bold]{mlflow_ui_command(workspace)}[/bold]"
    )
    return QuickstartResult(data_dir=data_dir, summary=summary, jobs=jobs)
