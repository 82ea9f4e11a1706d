"""``retain quickstart``: the main job end to end on simulated data, with progress.

Stages run in order and each one's output feeds the next: simulate → validate → features and
training (churn, CLV, segments) → score (the ranked list) → report. The chain has no loops or
branches.
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
    list_dir: Path | None = None
    report: Path | None = None


def show_top(scored, rows: int = 10, console=None) -> None:
    """Print the first ``rows`` of a list and what the selection holds (on ``console``, by
    default :data:`retain.progress.results`, stdout)."""
    from rich import box
    from rich.table import Table

    from retain.progress import results

    console = console or results

    summary = scored.summary
    table = Table(
        "rank", "customer", "churn", "CLV", "at risk", "action", "first reason",
        title=f"top {rows} of {len(scored.frame):,} active customers, as of {summary['as_of']}",
        box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for column in table.columns:  # a narrow terminal wraps words; a long one is folded, not cut
        column.overflow = "fold"
    for row in scored.frame.head(rows).itertuples(index=False):
        table.add_row(
            str(row.rank), str(row.customer_id), f"{row.churn_probability:.0%}",
            f"{row.clv:,.0f}", f"{row.value_at_risk:,.0f}", row.recommended_action, row.reason_1,
        )  # fmt: skip
    console.print(table)
    totals = summary["totals"]
    console.print(
        f"selected {summary['counts']['selected']:,}: value at risk "
        f"{totals['selected_value_at_risk']:,.0f}, expected net gain "
        f"{totals['selected_expected_net_gain']:,.0f} for a cost of "
        f"{totals['selected_cost']:,.0f}",
        highlight=False,
    )


def run_quickstart(
    workspace: Path, customers: int = 20_000, seed: int | None = None
) -> QuickstartResult:
    """Simulate, validate, build features, train every model, score and report.

    Progress goes to stderr; the top of the list and the paths written to stdout.

    Parameters
    ----------
    workspace : Path
        Folder that receives ``data/simulated/``, ``store/``, ``mlruns/`` and
        ``serving/output/``; its ``retain.yaml``, ``features/``, ``training/`` and ``serving/``
        are used when present, the packaged defaults otherwise. The simulated data are used
        whatever ``data`` and ``mapping`` in ``retain.yaml`` say.
    customers : int, default=20_000
        Number of simulated customers.
    seed : int, optional
        Random seed of the simulation (default: ``seed`` of ``retain.yaml``, which training
        uses too).
    """
    from retain.data import load_dataset, print_summary, summarize
    from retain.data.simulator import PROGRESS_STEPS, simulate_world, write_world
    from retain.progress import progress_bar, results, step_printer
    from retain.reports.html import render_report
    from retain.serving.score import score
    from retain.training.jobs import mlflow_ui_command, run_training
    from retain.workspace import load_workspace_config

    workspace = Path(workspace)
    settings = load_workspace_config(workspace)  # a bad retain.yaml stops before any work
    seed = settings.seed if seed is None else seed
    data_dir = workspace / "data" / "simulated"
    console.rule("[bold]1/5 simulate")
    with progress_bar("simulate", total=PROGRESS_STEPS) as report:
        world = simulate_world(customers, seed=seed, progress=report)
        write_world(world, data_dir)
    console.print(f"wrote {data_dir}")

    console.rule("[bold]2/5 validate")
    dataset = load_dataset(data_dir)
    summary = summarize(dataset)
    print_summary(summary)

    def progress(family: str):
        console.rule(f"[bold]3/5 features and training: {family}")
        return step_printer(family)

    jobs = run_training("all", workspace=workspace, data=dataset, progress=progress)
    for job in jobs:
        verdict = "champion" if job.decision.promoted else "challenger"
        console.print(f"retain-{job.family} v{job.version} ({verdict})", highlight=False)

    console.rule("[bold]4/5 score")
    as_of = world.end
    scored = score(as_of, workspace=workspace, data=dataset, progress=step_printer("score"))
    console.rule("[bold]5/5 report")
    report = render_report(scored.out, scored.out / "report.html")
    show_top(scored)
    results.print(
        f"\n[green]done.[/green]\n  data    {data_dir}\n  models  {workspace / 'mlruns'} "
        f"({mlflow_ui_command(workspace)})\n  list    {scored.out}\n  report  {report}",
        highlight=False,
        soft_wrap=True,
    )
    return QuickstartResult(data_dir, summary, jobs, scored.out, report)
