"""The ``retain`` command line: one thin command per stage, no logic beyond argument handling."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

# OpenMP threads (xgboost, scikit-learn) spin while they wait by default; on a busy machine
# that made one churn fit take 72 s instead of 11. Passive waiting costs little when the
# machine is idle. Set before xgboost loads; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from retain.errors import RetainError
from retain.progress import console
from retain.workspace import locate

app = typer.Typer(
    name="retain",
    help="Predict churn and customer value, and rank whom to call first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
features_app = typer.Typer(
    help="Build and inspect point-in-time feature snapshots.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
models_app = typer.Typer(help="List registered models and promote versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")

_state = {"debug": os.environ.get("RETAIN_DEBUG", "") not in ("", "0")}
F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn a :class:`RetainError` into a clean message and its exit code (traceback: --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RetainError as error:
            if _state["debug"]:
                raise
            from rich.markup import escape

            message = f"[bold red]error:[/bold red] {escape(str(error))}"
            console.print(message, highlight=False, soft_wrap=True)
            raise typer.Exit(code=error.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks on errors.")
    ] = False,
) -> None:
    """retain: churn, customer lifetime value and ranked retention lists."""
    if debug:
        _state["debug"] = True


DataDir = Annotated[
    Path, typer.Option("--data", help="Folder with customers, transactions, interactions.")
]
MappingFile = Annotated[
    Path | None, typer.Option("--mapping", help="YAML file mapping your column names and formats.")
]
Engine = Annotated[
    Literal["duckdb", "spark"],
    typer.Option(help="Run on embedded DuckDB, or on Spark (pip install 'retain\\[spark]')."),
]
SparkConfig = Annotated[
    Path | None,
    typer.Option(help="Spark settings for --engine spark (default: spark.yaml, else ours)."),
]


@app.command()
@reports_errors
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the simulated tables to.")],
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Number of customers.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same files.")] = 0,
    start: Annotated[str | None, typer.Option(help="First day of history (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Day after the last day of history (YYYY-MM-DD).")
    ] = None,
    model: Annotated[
        str, typer.Option(help="'retail' (full world) or 'bgnbd' (BTYD summary data).")
    ] = "retail",
    r: Annotated[float, typer.Option(help="BG/NBD: shape of the purchase-rate gamma.")] = 0.24,
    alpha: Annotated[float, typer.Option(help="BG/NBD: rate of the purchase-rate gamma.")] = 4.41,
    a: Annotated[float, typer.Option(help="BG/NBD: beta dropout parameter a.")] = 0.79,
    b: Annotated[float, typer.Option(help="BG/NBD: beta dropout parameter b.")] = 2.43,
    T: Annotated[
        float, typer.Option("--T", help="BG/NBD: observation length per customer.")
    ] = 39.0,
) -> None:
    """Simulate a retail world with known ground truth (or plain BG/NBD data)."""
    from retain.data import simulator
    from retain.progress import progress_bar

    if model == "bgnbd":
        frame = simulator.simulate_bgnbd(customers, r=r, alpha=alpha, a=a, b=b, T=T, seed=seed)
        path = simulator.write_bgnbd(frame, out)
        console.print(f"wrote {len(frame):,} BG/NBD customers to {path}")
        return
    if model != "retail":
        raise typer.BadParameter("choose 'retail' or 'bgnbd'", param_hint="--model")
    options = {key: value for key, value in (("start", start), ("end", end)) if value is not None}
    with progress_bar("simulate", total=simulator.PROGRESS_STEPS) as report:
        world = simulator.simulate_world(customers, seed=seed, progress=report, **options)
        paths = simulator.write_world(world, out)
    console.print(
        f"simulated {len(world.customers):,} customers, {len(world.transactions):,} transactions, "
        f"{len(world.interactions):,} interactions ({world.start} to {world.end})"
    )
    for name, path in paths.items():
        console.print(f"  {name:<13} {path}")


@app.command()
@reports_errors
def validate(data: DataDir, mapping: MappingFile = None) -> None:
    """Check a data folder against the data contract and summarise it."""
    from retain.data import load_dataset, print_summary, summarize

    dataset = load_dataset(data, mapping=mapping)
    for warning in dataset.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    print_summary(summarize(dataset))


@features_app.command("build")
@reports_errors
def features_build(
    data: DataDir,
    as_of: Annotated[list[str], typer.Option("--as-of", help="Cutoff date; repeat for several.")],
    mapping: MappingFile = None,
    store: Annotated[Path, typer.Option(help="Snapshot store folder.")] = Path("store"),
    repo: Annotated[
        Path, typer.Option(help="Feature repository folder (default: ./features, else ours).")
    ] = Path("features"),
    engine: Engine = "duckdb",
    spark_config: SparkConfig = None,
) -> None:
    """Build feature snapshots at one or more cutoffs."""
    import warnings

    from rich.table import Table

    from retain.features import CutoffWarning, FeatureStore, resolve_data
    from retain.progress import progress_bar

    cutoffs = [_parse_date(text, "--as-of") for text in as_of]
    feature_store = FeatureStore(store, locate(".", repo))
    spark_settings = None
    if engine == "spark":  # before the data are read: a missing pyspark or bad config fails fast
        from retain.spark import load_spark_settings, require_pyspark

        require_pyspark()
        spark_settings = load_spark_settings(".", spark_config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CutoffWarning)
        sources = resolve_data(data, mapping)
        with progress_bar("features", total=len(set(cutoffs))) as report:
            results = feature_store.build(
                sources, cutoffs, progress=report, engine=engine, spark_settings=spark_settings
            )
    cutoff_warnings = [str(w.message) for w in caught if issubclass(w.category, CutoffWarning)]
    for message in [*sources.notes, *cutoff_warnings]:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
    table = Table("as_of", "rows", "features", "status", "seconds", "snapshot", title="snapshots")
    for result in results:
        status = "built" if result.built else "skipped (unchanged)"
        table.add_row(
            str(result.as_of), f"{result.rows:,}", str(result.features), status,
            f"{result.seconds:.1f}", str(result.path),
        )  # fmt: skip
    console.print(table)


@features_app.command("list")
@reports_errors
def features_list(
    store: Annotated[Path, typer.Option(help="Snapshot store folder.")] = Path("store"),
    repo: Annotated[
        Path, typer.Option(help="Feature repository folder (default: ./features, else ours).")
    ] = Path("features"),
) -> None:
    """List feature views, their versions and the snapshots built."""
    from rich.table import Table

    from retain.features import FeatureStore

    feature_store = FeatureStore(store, locate(".", repo))
    views = Table("view", "version", "source", "features", "description", title="feature views")
    for view in feature_store.repository.views:
        views.add_row(
            view.name, view.version, view.source, str(len(view.feature_names)), view.description
        )
    console.print(views)
    columns = ("as_of", "snapshot", "rows", "definitions", "source", "built")
    snapshots = Table(*columns, title="snapshots")
    for info in feature_store.snapshots():
        state = "current" if feature_store.is_current(info) else "outdated"
        snapshots.add_row(
            str(info.as_of), info.snapshot_id, f"{info.rows:,}", state,
            info.manifest["source_fingerprint"], info.manifest["built_at"],
        )  # fmt: skip
    if not snapshots.rows:
        console.print(f"no snapshots in {store} yet: run `retain features build`")
    else:
        console.print(snapshots)


Workspace = Annotated[
    Path, typer.Option(help="Folder with training/, features/, store/ and mlruns/.")
]
OptionalData = Annotated[
    Path | None,
    typer.Option("--data", help="Data folder (default: the `data` key of the config)."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: training/<family>.yaml)."),
]


@app.command()
@reports_errors
def train(
    family: Annotated[str, typer.Argument(help="churn, clv, segments or all.")],
    data: OptionalData = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
    engine: Engine = "duckdb",
    spark_config: SparkConfig = None,
) -> None:
    """Train churn, CLV and segment models and register them in MLflow."""
    from retain.progress import step_printer
    from retain.training.jobs import mlflow_ui_command, run_training

    def progress(name: str):
        console.rule(f"[bold]train {name}")
        return step_printer(name)

    run_training(
        family, workspace=workspace, data=data, config_path=config, progress=progress,
        on_done=_print_job, engine=engine, spark_config=spark_config,
    )  # fmt: skip
    console.print(f"\nruns: [bold]{mlflow_ui_command(workspace)}[/bold]")


def _print_job(result) -> None:
    from rich.markup import escape

    verdict = "[green]champion[/]" if result.decision.promoted else "[yellow]challenger[/]"
    console.print(
        f"[bold]retain-{result.family}[/bold] v{result.version} -> {verdict}  "
        f"run {result.run_id}\n  {escape(result.decision.reason)}",
        highlight=False,
    )
    shown = [name for name in SUMMARY_METRICS.get(result.family, ()) if name in result.metrics]
    if shown:
        console.print(
            "  " + ", ".join(f"{name} {result.metrics[name]:.4g}" for name in shown),
            highlight=False,
        )


SUMMARY_METRICS = {
    "churn": (
        "valid.model_roc_auc",
        "valid.recency_rule_roc_auc",
        "valid.logistic_roc_auc",
        "valid.btyd_roc_auc",
        "valid.oracle_roc_auc",
        "valid.model_ece",
    ),
    "clv": ("valid.btyd_gini", "valid.ml_gini", "valid.oracle_gini", "valid.model_decile_mape"),
    "segments": ("valid.silhouette", "valid.clusters"),
}


@app.command()
@reports_errors
def plan(
    family: Annotated[str, typer.Argument(help="churn, clv, segments or all.")] = "all",
    data: OptionalData = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
) -> None:
    """Show what training will use: cutoffs, label windows, active customers and churn rates.

    Reads the transactions only (no snapshot is built, no model fitted). When the configured
    horizon or cutoffs do not fit the data, the error names a plan that does.
    """
    from retain.training.jobs import run_plans
    from retain.training.plan import plan_table

    for found in run_plans(family, workspace=workspace, data=data, config_path=config):
        console.print(plan_table(found))
        for note in found.notes:
            console.print(f"[yellow]note:[/yellow] {note}", highlight=False)


@app.command()
@reports_errors
def tune(
    family: Annotated[str, typer.Argument(help="churn or clv.")],
    trials: Annotated[
        int | None, typer.Option(help="Trials to run now (default: tuning.trials).")
    ] = None,
    timeout_minutes: Annotated[
        float | None, typer.Option(help="Stop starting trials after this long.")
    ] = None,
    data: OptionalData = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
) -> None:
    """Tune churn or CLV hyperparameters with Optuna, then train and register the best."""
    from retain.progress import step_printer
    from retain.training.jobs import mlflow_ui_command, run_tuning

    console.rule(f"[bold]tune {family}")
    result = run_tuning(
        family, workspace=workspace, data=data, config_path=config, trials=trials,
        timeout_minutes=timeout_minutes, progress=step_printer(family),
    )  # fmt: skip
    console.print(
        f"study {result.study_name}: {result.trials} trials ({result.completed} complete, "
        f"{result.pruned} pruned); best {result.best_value:.4f} with {result.best_settings}",
        highlight=False,
    )
    _print_job(result.final)
    console.print(f"\nruns: [bold]{mlflow_ui_command(workspace)}[/bold]")


@models_app.command("list")
@reports_errors
def models_list(
    family: Annotated[str | None, typer.Argument(help="churn, clv or segments.")] = None,
    reasons: Annotated[
        bool, typer.Option("--reasons", help="Show why each version was or was not promoted.")
    ] = False,
    workspace: Workspace = Path("."),
) -> None:
    """List registered model versions with their aliases and scores."""
    from retain.training import registry, tracking

    tracking.use_workspace(workspace)
    frame = registry.list_versions(family)
    if frame.empty:
        console.print("no registered models yet: run `retain train all`")
        return
    console.print(registry.models_table(frame))
    for row in frame.itertuples(index=False):  # what each version predicts, from what
        family = registry.family_of(str(row.name))
        console.print(f"{family} v{row.version}: {row.definition or 'unknown'}", highlight=False)
    if reasons:
        for row in frame.itertuples(index=False):
            console.print(f"{row.name} v{row.version}: {row.decision}", highlight=False)


@models_app.command("promote")
@reports_errors
def models_promote(
    name: Annotated[str, typer.Argument(help="Model family or name, e.g. churn or retain-churn.")],
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
    workspace: Workspace = Path("."),
) -> None:
    """Make a model version the champion (scoring uses the champion)."""
    from retain.training import registry, tracking

    tracking.use_workspace(workspace)
    promoted = registry.promote(name, version)
    console.print(f"{promoted.name} v{promoted.version} is now the champion", highlight=False)


@app.command()
@reports_errors
def score(
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring cutoff YYYY-MM-DD.")],
    data: OptionalData = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Scoring config (default serving/score.yaml).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default serving/output/<as_of>).")
    ] = None,
    capacity: Annotated[int | None, typer.Option(help="Most customers to contact.")] = None,
    budget: Annotated[float | None, typer.Option(help="Most total action cost.")] = None,
    strict: Annotated[
        bool | None, typer.Option("--strict/--no-strict", help="Refuse to write on drift.")
    ] = None,
    pseudonymize: Annotated[
        bool | None,
        typer.Option("--pseudonymize/--no-pseudonymize", help="Keyed-HMAC customer ids."),
    ] = None,
    workspace: Workspace = Path("."),
    engine: Engine = "duckdb",
    spark_config: SparkConfig = None,
) -> None:
    """Score active customers and write the ranked retention-priority list."""
    from retain.progress import step_printer
    from retain.serving.score import score as score_list

    result = score_list(
        _parse_date(as_of, "--as-of"), workspace=workspace, data=data, config_path=config,
        out=out, strict=strict, pseudonymize_ids=pseudonymize, capacity=capacity,
        budget=budget, progress=step_printer("score"), engine=engine, spark_config=spark_config,
    )  # fmt: skip
    _print_list(result)


def _print_list(result) -> None:
    from retain.quickstart import show_top

    for name in result.summary["drift"].get("drifted", []):
        psi = result.summary["drift"]["psi"][name]
        console.print(f"[yellow]warning:[/yellow] feature {name} drifted (PSI {psi:.3f})")
    show_top(result)
    models = result.summary["models"]
    console.print(
        "models: " + ", ".join(
            f"{family} v{model['version']} ({model.get('estimator', '?')})"
            for family, model in models.items()
        ),
        highlight=False,
    )  # fmt: skip
    console.print(f"list: {result.out}", highlight=False)


ListPath = Annotated[
    Path, typer.Option("--list", help="A list folder (or its retention_priority.parquet).")
]


@app.command()
@reports_errors
def report(
    list_path: ListPath,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    top: Annotated[int, typer.Option(help="Customers shown in the top table.")] = 50,
) -> None:
    """Render the HTML report of a retention-priority list."""
    from retain.reports.html import render_report

    path = render_report(list_path, out, top=top)
    console.print(f"report: {path}", highlight=False)


@app.command()
@reports_errors
def backtest(
    list_path: ListPath,
    data: DataDir,
    mapping: MappingFile = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for backtest_deciles.csv and .json.")
    ] = None,
    allow_partial: Annotated[
        bool, typer.Option(help="Compute even when the horizon has not fully passed.")
    ] = False,
) -> None:
    """Compare a past list with what its customers actually did."""
    from retain.serving.backtest import backtest as run_backtest
    from retain.serving.backtest import print_backtest, write_backtest

    result = run_backtest(list_path, data, mapping=mapping, allow_partial=allow_partial)
    print_backtest(result)
    if out is not None:
        paths = write_backtest(result, out)
        console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)


@app.command()
@reports_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Workspace folder to scaffold.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Copy the default feature definitions, training configs and playbook into a folder."""
    from retain.workspace import init_workspace

    written = init_workspace(folder, force=force)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if not written:
        console.print(f"{folder} already has every default file (use --force to overwrite)")


@app.command()
@reports_errors
def quickstart(
    workspace: Annotated[
        Path, typer.Option(help="Folder for data, snapshots, runs and lists.")
    ] = Path("."),
    customers: Annotated[int, typer.Option(help="Number of simulated customers.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the main job end to end on simulated data (stages built so far)."""
    from retain.quickstart import run_quickstart

    run_quickstart(workspace, customers=customers, seed=seed)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {text!r}", param_hint=option) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
