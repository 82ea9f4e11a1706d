"""``retain quickstart``: the main job end to end on simulated data, with progress.

Stages run in order and each one's output feeds the next: simulate (with cost to serve,
referrals and, with ``campaigns``, randomised retention campaigns) → validate → features and
training (churn, CLV, segments; with ``campaigns`` the uplift model, learned from the
campaigns) → score (the ranked list: by the uplift model's expected gains when it passed its
gate, by the playbook's prior save rates otherwise, and the list says which) → profitability
(each customer's P&L) → report (with its profitability section). The chain has no loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

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
    profitability_dir: Path | None = None


#: The terminal summary fits this many columns.
WIDTH = 80


def _amount(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _call(row) -> str:
    """The ``call`` column: ``yes`` for the treatment group, ``hold`` for the control group
    (selected, held out to measure the contacts), empty for the others."""
    if not row.selected:
        return ""
    return "hold" if getattr(row, "group", None) == "control" else "yes"


def show_top(scored, rows: int = 10, console=None) -> None:
    """Print the first ``rows`` of a list (the selected customers come first, marked in the
    ``call`` column: ``yes``, or ``hold`` for the control group), what the selection holds,
    and its notes, within 80 columns.

    Parameters
    ----------
    scored : ScoreResult
        A written list (``frame`` and ``summary``).
    rows : int, default=10
        Rows shown.
    console : rich.console.Console, optional
        Where to print (default :data:`retain.progress.results`, stdout).
    """
    from rich import box
    from rich.table import Table

    from retain.progress import results

    out = console or results
    summary = scored.summary
    currency = summary.get("currency") or ""
    frame = scored.frame
    width = min(WIDTH, out.width)
    table = Table(
        title=f"top {min(rows, len(frame)):,} of {len(frame):,} active customers, as of "
        f"{summary['as_of']}" + (f"; amounts in {currency}" if currency else ""),
        box=box.SIMPLE_HEAD, width=width, pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    columns = (("rank", "right"), ("call", "left"), ("customer", "left"), ("churn", "right"),
               ("at risk", "right"), ("action", "left"))  # fmt: skip
    # nothing is cut: a long id, action or reason wraps onto the next line instead
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold", max_width=16)
    table.add_column("first reason", overflow="fold", ratio=1)
    for row in frame.head(rows).itertuples(index=False):
        table.add_row(
            f"{row.rank:,}", _call(row), str(row.customer_id),
            f"{row.churn_probability:.0%}", _amount(row.value_at_risk),
            str(row.recommended_action), str(row.reason_1),
        )  # fmt: skip
    out.print(table, width=width)
    selection = summary["selection"]
    totals = summary["totals"]
    unit = f" {currency}" if currency else ""
    line = (
        f"selected {summary['counts']['selected']:,}: value at risk "
        f"{_amount(totals['selected_value_at_risk'])}{unit}, expected net gain "
        f"{_amount(totals['selected_expected_net_gain'])}{unit} for a cost of "
        f"{_amount(totals['selected_cost'])}{unit}"
    )
    anyone = summary["counts"]["selected"] > 0
    if anyone and selection.get("optimal"):
        line += " (optimal)"
    elif anyone and selection.get("lp_bound") is not None:
        line += f" (within {selection['optimality_gap_share']:.2%} of the best possible)"
    held_out = summary["counts"].get("control", 0)
    if held_out:
        line += f"; {held_out:,} of them held out as a control group (not to be called)"
    out.print(line, highlight=False, width=width)
    for note in selection.get("notes", []):
        out.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, width=width)


def run_quickstart(
    workspace: Path, customers: int = 20_000, seed: int | None = None, campaigns: bool = False
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
    campaigns : bool, default=False
        Simulate four randomised retention campaigns (the simulator's default
        ``CampaignPlan``: every playbook action, 20% control) and train the uplift model on
        them; the list is ranked by its expected gains when it passes its gate (beats ranking
        by churn probability and by value at risk), by the playbook's prior save rates
        otherwise (or when too few customers leave an arm empty), and says which.
    """
    from retain.data import load_dataset, print_summary, summarize
    from retain.data.simulator import PROGRESS_STEPS, simulate_world, write_world
    from retain.progress import progress_bar, results, step_printer
    from retain.reports.html import render_report
    from retain.serving.profitability import print_profitability, profitability
    from retain.serving.score import score
    from retain.training.jobs import mlflow_ui_command, run_training
    from retain.workspace import load_workspace_config

    workspace = Path(workspace)
    settings = load_workspace_config(workspace)  # a bad retain.yaml stops before any work
    seed = settings.seed if seed is None else seed
    data_dir = workspace / "data" / "simulated"
    console.rule("[bold]1/5 simulate")
    with progress_bar("simulate", total=PROGRESS_STEPS) as report:
        world = simulate_world(customers, seed=seed, progress=report, costs=True, referrals=True,
                               campaigns=True if campaigns else None)  # fmt: skip
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
    if campaigns:
        jobs += _uplift(workspace, dataset, progress)
    for job in jobs:
        verdict = "champion" if job.decision.promoted else "challenger"
        console.print(f"retain-{job.family} v{job.version} ({verdict})", highlight=False)

    console.rule("[bold]4/5 score")
    as_of = world.end
    scored = score(
        as_of, workspace=workspace, data=dataset, progress=step_printer("score"),
        render_report=render_report,
    )  # fmt: skip
    console.rule("[bold]5/5 profitability and report")
    pnl = profitability(
        as_of, workspace=workspace, data=dataset, progress=step_printer("profitability")
    )
    report = render_report(scored.out, scored.out / "report.html", profitability=pnl.out)
    show_top(scored)
    gains = scored.summary["gains"]
    results.print(f"ranked by {gains['source']}: {escape(gains['note'])}", highlight=False,
                  width=min(WIDTH, results.width))  # fmt: skip
    print_profitability(pnl, console=results)
    results.print(
        f"\n[green]done.[/green]\n  data    {data_dir}\n  models  {workspace / 'mlruns'} "
        f"({mlflow_ui_command(workspace)})\n  list    {scored.out}\n  P&L     {pnl.out}\n"
        f"  report  {report}",
        highlight=False,
        soft_wrap=True,
    )
    return QuickstartResult(data_dir, summary, jobs, scored.out, report, pnl.out)


def _uplift(workspace: Path, dataset, progress) -> list:
    """The uplift job on the simulated campaigns; none when they leave it too little to learn
    from (its error says why, and the list uses the playbook's prior)."""
    from retain.errors import RetainError
    from retain.training.jobs import run_training

    try:
        return run_training("uplift", workspace=workspace, data=dataset, progress=progress)
    except RetainError as error:
        console.print(
            f"[yellow]uplift not trained:[/yellow] {escape(str(error))}; the list uses the "
            "playbook's prior save rates",
            highlight=False,
        )
        return []
