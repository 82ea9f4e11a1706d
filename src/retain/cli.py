"""The ``retain`` command line: one thin command per stage, no logic beyond argument handling.

Conventions: results (tables, lists, paths, summaries) go to stdout, so they can be piped;
progress, logs, warnings and errors go to stderr. Every command that reads data takes
``--data`` and ``--mapping`` (defaults: ``retain.yaml``) and ``--workspace``.
"""

from __future__ import annotations

import functools
import math
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

from retain import __version__
from retain.errors import RetainError, storage_error
from retain.progress import console, results
from retain.workspace import CONFIG_FILE, ENGINES, locate, workspace_settings

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
mlflow_app = typer.Typer(help="Open the workspace's MLflow runs and models.", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")

_state = {"debug": os.environ.get("RETAIN_DEBUG", "") not in ("", "0")}
F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn a :class:`RetainError` into a clean message and its exit code (traceback: --debug).

    File-system errors (a full disk, a read-only folder, a file where a folder should be) are
    reported the same way, as :class:`~retain.errors.StorageError`.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as error:
            clean = error if isinstance(error, RetainError) else storage_error(error)
            if clean is None or _state["debug"]:
                raise
            from rich.markup import escape

            message = f"[bold red]error:[/bold red] {escape(str(clean))}"
            console.print(message, highlight=False, soft_wrap=True)
            raise typer.Exit(code=clean.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _show_version(value: bool) -> None:
    if value:
        results.print(f"retain {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """retain: churn, customer lifetime value and ranked retention lists."""
    if debug:
        _state["debug"] = True


# Options shared by the stages, named and defaulted the same way everywhere: retain.yaml of the
# workspace says where things are, and an option given on the command line overrides its key.
Workspace = Annotated[
    Path,
    typer.Option(
        "--workspace", help=f"Workspace folder, with its {CONFIG_FILE} (default: this folder)."
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option("--data", help=f"Data folder (default: `data` in {CONFIG_FILE})."),
]
MappingFile = Annotated[
    Path | None,
    typer.Option(
        "--mapping", help=f"Column mapping YAML of the data (default: `mapping` in {CONFIG_FILE})."
    ),
]
Engine = Annotated[
    Literal[ENGINES] | None,  # the names retain.yaml may give (see retain.engines)
    typer.Option(
        "--engine",
        help="duckdb, or spark: pip install 'retain\\[spark]' "
        f"(default: `engine` in {CONFIG_FILE}).",
    ),
]
SparkConfig = Annotated[
    Path | None,
    typer.Option(
        "--spark-config",
        help=f"Spark settings file for --engine spark, instead of `spark` in {CONFIG_FILE}.",
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Cutoff YYYY-MM-DD (default: the day after the last event)."),
]
StoreDir = Annotated[
    Path | None,
    typer.Option("--store", help=f"Snapshot store folder (default: `store` in {CONFIG_FILE})."),
]
RepoDir = Annotated[
    Path | None,
    typer.Option(
        "--repo", help=f"Feature repository folder (default: `features` in {CONFIG_FILE})."
    ),
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
    campaigns: Annotated[
        bool,
        typer.Option(
            "--campaigns",
            help="Add retention campaigns: randomised actions with known effects "
            "(campaigns.parquet).",
        ),
    ] = False,
    campaign_dates: Annotated[
        str | None,
        typer.Option(help="Campaign dates, comma-separated YYYY-MM-DD (implies --campaigns)."),
    ] = None,
    control_share: Annotated[
        float | None,
        typer.Option(help="Share of each campaign held out as control (implies --campaigns)."),
    ] = None,
    costs: Annotated[
        bool, typer.Option("--costs", help="Add a cost-to-serve log (costs.parquet).")
    ] = False,
    referrals: Annotated[
        bool, typer.Option("--referrals", help="Add referred_by to customers.")
    ] = False,
) -> None:
    """Simulate a retail world with known ground truth (or plain BG/NBD data)."""
    from retain.data import simulator
    from retain.progress import progress_bar

    simulator.check_simulation_out(out)  # before simulating: never over real data
    retail_only = campaigns or campaign_dates or control_share is not None or costs or referrals
    if model == "bgnbd" and retail_only:
        raise typer.BadParameter(
            "--campaigns, --campaign-dates, --control-share, --costs and --referrals "
            "belong to the retail world",
            param_hint="--model",
        )
    if model == "bgnbd":
        frame = simulator.simulate_bgnbd(customers, r=r, alpha=alpha, a=a, b=b, T=T, seed=seed)
        path = simulator.write_bgnbd(frame, out)
        results.print(f"wrote {len(frame):,} BG/NBD customers to {path}", soft_wrap=True)
        return
    if model != "retail":
        raise typer.BadParameter("choose 'retail' or 'bgnbd'", param_hint="--model")
    options: dict[str, object] = {
        key: value for key, value in (("start", start), ("end", end)) if value is not None
    }
    plan: dict[str, object] = {}
    if campaign_dates is not None:
        plan["dates"] = [day.strip() for day in campaign_dates.split(",") if day.strip()]
    if control_share is not None:
        plan["control_share"] = control_share
    if campaigns or plan:
        options["campaigns"] = plan or True
    options.update(costs=costs, referrals=referrals)
    with progress_bar("simulate", total=simulator.PROGRESS_STEPS) as report:
        world = simulator.simulate_world(customers, seed=seed, progress=report, **options)
        paths = simulator.write_world(world, out)
    results.print(
        f"simulated {len(world.customers):,} customers, {len(world.transactions):,} transactions, "
        f"{len(world.interactions):,} interactions ({world.start} to {world.end})"
    )
    for name, path in paths.items():
        results.print(f"  {name:<13} {path}", soft_wrap=True)


@app.command()
@reports_errors
def validate(
    data: DataDir = None, mapping: MappingFile = None, workspace: Workspace = Path(".")
) -> None:
    """Check a data folder against the data contract and summarise it."""
    from retain.data import load_dataset, print_summary, summarize

    settings = workspace_settings(workspace, data=data, mapping=mapping)
    dataset = load_dataset(
        *_data_and_mapping(workspace, settings), window=settings.timestamp_window
    )
    for warning in dataset.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    print_summary(summarize(dataset), console=results)


def _data_and_mapping(workspace: Path, settings) -> tuple[Path, Path | None]:
    """The data folder and mapping file of a (command-line overridden) workspace config."""
    mapping = settings.path(workspace, settings.mapping) if settings.mapping else None
    return settings.path(workspace, settings.data), mapping


@features_app.command("build")
@reports_errors
def features_build(
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of",
            help="Cutoff YYYY-MM-DD; repeat for several (default: the day after the last event).",
        ),
    ] = None,
    data: DataDir = None,
    mapping: MappingFile = None,
    store: StoreDir = None,
    repo: RepoDir = None,
    workspace: Workspace = Path("."),
    engine: Engine = None,
    spark_config: SparkConfig = None,
) -> None:
    """Build feature snapshots at one or more cutoffs."""
    import warnings

    from rich.table import Table

    from retain.engines import get_engine
    from retain.features import CutoffWarning, FeatureStore, default_cutoff, resolve_data
    from retain.progress import progress_bar

    cutoffs = [_parse_date(text, "--as-of") for text in as_of or ()]
    settings = workspace_settings(
        workspace, data=data, mapping=mapping, store=store, features=repo, engine=engine
    )
    feature_store = FeatureStore(
        settings.path(workspace, settings.store), locate(workspace, settings.features)
    )
    # before the data are read: an engine whose libraries are missing fails fast
    chosen = get_engine(settings.engine, workspace=workspace, config_file=spark_config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CutoffWarning)
        given = resolve_data(*_data_and_mapping(workspace, settings), settings.timestamp_window)
        sources = feature_store.sources(given.charge(settings.costs.rates(), settings.margin_rate))
        if not cutoffs:
            cutoff, last = default_cutoff(sources)
            console.print(f"as of {cutoff}: the day after the last event ({last})", highlight=False)
            cutoffs = [cutoff]
        with progress_bar("features", total=len(set(cutoffs))) as report:
            built = feature_store.build(sources, cutoffs, progress=report, engine=chosen)
    cutoff_warnings = [str(w.message) for w in caught if issubclass(w.category, CutoffWarning)]
    for message in [*sources.notes, *cutoff_warnings]:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
    table = Table("as_of", "rows", "features", "status", "seconds", "snapshot", title="snapshots")
    table.columns[-1].overflow = "fold"  # a path: wrapped whole, never cut
    for result in built:
        status = "built" if result.built else "skipped (unchanged)"
        table.add_row(
            str(result.as_of), f"{result.rows:,}", str(result.features), status,
            f"{result.seconds:.1f}", str(result.path),
        )  # fmt: skip
    results.print(table)


@features_app.command("list")
@reports_errors
def features_list(
    store: StoreDir = None, repo: RepoDir = None, workspace: Workspace = Path(".")
) -> None:
    """List feature views, their versions and the snapshots built."""
    from rich.table import Table

    from retain.features import FeatureStore

    settings = workspace_settings(workspace, store=store, features=repo)
    store_dir = settings.path(workspace, settings.store)
    feature_store = FeatureStore(store_dir, locate(workspace, settings.features))
    views = Table("view", "version", "source", "features", "description", title="feature views")
    for view in feature_store.repository.views:
        views.add_row(
            view.name, view.version, view.source, str(len(view.feature_names)), view.description
        )
    results.print(views)
    columns = ("as_of", "snapshot", "rows", "definitions", "source", "built")
    snapshots = Table(*columns, title="snapshots")
    for info in feature_store.snapshots():
        state = "current" if feature_store.is_current(info) else "outdated"
        snapshots.add_row(
            str(info.as_of), info.snapshot_id, f"{info.rows:,}", state,
            info.manifest["source_fingerprint"], info.manifest["built_at"][:16],
        )  # fmt: skip
    for column in snapshots.columns:
        column.overflow = "fold"  # ids are looked up: wrapped, never cut
    if not snapshots.rows:
        console.print(f"no snapshots in {store_dir} yet: run `retain features build`")
    else:
        results.print(snapshots)


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: training/<family>.yaml)."),
]


@app.command()
@reports_errors
def train(
    family: Annotated[
        str, typer.Argument(help="churn, clv, segments, uplift, or all (churn, clv, segments).")
    ],
    data: DataDir = None,
    mapping: MappingFile = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
    engine: Engine = None,
    spark_config: SparkConfig = None,
) -> None:
    """Train churn, CLV, segment and uplift models and register them in MLflow."""
    from retain.progress import step_printer
    from retain.training.jobs import mlflow_ui_command, run_training

    def progress(name: str):
        console.rule(f"[bold]train {name}")
        return step_printer(name)

    run_training(
        family, workspace=workspace, data=data, mapping=mapping, config_path=config,
        progress=progress, on_done=_print_job, engine=engine, spark_config=spark_config,
    )  # fmt: skip
    results.print(f"\nruns: [bold]{mlflow_ui_command(workspace)}[/bold]", soft_wrap=True)


def _print_job(result) -> None:
    from rich.markup import escape

    verdict = "[green]champion[/]" if result.decision.promoted else "[yellow]challenger[/]"
    results.print(
        f"[bold]retain-{result.family}[/bold] v{result.version} -> {verdict}  "
        f"run {result.run_id}\n  {escape(result.decision.reason)}",
        highlight=False,
    )
    shown = [name for name in SUMMARY_METRICS.get(result.family, ()) if name in result.metrics]
    if shown:
        results.print(
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
    "uplift": (  # the gate's measure first (training/uplift.py GATE_MEASURE)
        "valid.model_adjusted_qini",
        "valid.value_at_risk_adjusted_qini",
        "valid.churn_probability_adjusted_qini",
        "valid.model_incremental_profit_at_capacity",
        "valid.model_qini",
        "valid.model_share_of_oracle",
    ),
}


def _finite_positive(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a finite number above 0, got {value}")
    return value


@app.command()
@reports_errors
def plan(
    family: Annotated[str, typer.Argument(help="churn, clv, segments or all.")] = "all",
    data: DataDir = None,
    mapping: MappingFile = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
) -> None:
    """Show what training will use: cutoffs, label windows, active customers and churn rates.

    Reads the transactions only (no snapshot is built, no model fitted). When the configured
    horizon or cutoffs do not fit the data, the error names a plan that does.
    """
    from retain.training.jobs import run_plans
    from retain.training.plan import plan_table

    found_plans = run_plans(
        family, workspace=workspace, data=data, mapping=mapping, config_path=config
    )
    for found in found_plans:
        results.print(plan_table(found))
        for note in found.notes:
            console.print(f"[yellow]note:[/yellow] {note}", highlight=False)


@app.command()
@reports_errors
def tune(
    family: Annotated[str, typer.Argument(help="churn or clv.")],
    trials: Annotated[
        int | None, typer.Option(min=0, help="Trials to run now (default: tuning.trials; 0: none).")
    ] = None,
    timeout_minutes: Annotated[
        float | None,
        typer.Option(callback=_finite_positive, help="Stop starting trials after this long."),
    ] = None,
    data: DataDir = None,
    mapping: MappingFile = None,
    config: ConfigFile = None,
    workspace: Workspace = Path("."),
) -> None:
    """Tune churn or CLV hyperparameters with Optuna, then train and register the best."""
    from retain.progress import step_printer
    from retain.training.jobs import mlflow_ui_command, run_tuning

    console.rule(f"[bold]tune {family}")
    result = run_tuning(
        family, workspace=workspace, data=data, mapping=mapping, config_path=config,
        trials=trials, timeout_minutes=timeout_minutes, progress=step_printer(family),
    )  # fmt: skip
    from retain.training.tuning import format_settings

    results.print(
        f"study {result.study_name}: {result.trials} new trials ({result.completed} complete, "
        f"{result.pruned} pruned); best {result.best_value:.4f} (trial {result.best_trial}) "
        f"with {format_settings(result.best_settings)}",
        highlight=False,
    )
    if result.final is None:
        console.print(result.note, highlight=False)
        return
    _print_job(result.final)
    results.print(f"\nruns: [bold]{mlflow_ui_command(workspace)}[/bold]", soft_wrap=True)


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
    from retain.mlflow import registry, tracking

    tracking.use_workspace(workspace)
    frame = registry.list_versions(family)
    if frame.empty:
        console.print("no registered models yet: run `retain train all`")
        return
    results.print(models_table(frame))
    for row in frame.itertuples(index=False):  # what each version predicts, from what
        definition = row.definition or "unknown"
        results.print(f"{row.name} v{row.version}: {definition}", highlight=False, overflow="fold")
    if reasons:
        for row in frame.itertuples(index=False):
            results.print(f"{row.name} v{row.version}: {row.decision}", highlight=False)


def models_table(frame):
    """A rich table of :func:`retain.mlflow.registry.list_versions` output (champions in bold
    green).

    Narrow enough for an 80-column terminal; the promotion reasons, which are sentences, are
    printed by the CLI below it on request.
    """
    import pandas as pd
    from rich import box
    from rich.table import Table

    from retain.mlflow.registry import CHAMPION, family_of

    table = Table(
        title="Registered models (retain-<model>)", box=box.SIMPLE_HEAD, padding=(0, 1),
        show_edge=False, pad_edge=False,
    )  # fmt: skip
    for column, justify in (
        ("model", "left"), ("ver", "right"), ("aliases", "left"), ("metric", "left"),
        ("score", "right"), ("created UTC", "left"), ("run", "left"),
    ):  # fmt: skip
        # only the aliases wrap (at the comma) when the terminal is narrow; nothing is cut
        table.add_column(column, justify=justify, no_wrap=column != "aliases")
    for row in frame.itertuples(index=False):
        score = "" if pd.isna(row.score) else f"{row.score:.4f}"
        created = "" if pd.isna(row.created) else pd.Timestamp(row.created).strftime("%m-%d %H:%M")
        style = "bold green" if CHAMPION in str(row.aliases).split(", ") else None
        table.add_row(
            family_of(str(row.name)), str(row.version), str(row.aliases),
            str(row.primary_metric), score, created, str(row.run_id)[:8], style=style,
        )  # fmt: skip
    if not len(frame):
        table.caption = "no models registered yet; train one with `retain train churn`"
    return table


@models_app.command("promote")
@reports_errors
def models_promote(
    name: Annotated[str, typer.Argument(help="Model family or name, e.g. churn or retain-churn.")],
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
    workspace: Workspace = Path("."),
) -> None:
    """Make a model version the champion (scoring uses the champion)."""
    from retain.mlflow import registry, tracking

    tracking.use_workspace(workspace)
    promoted = registry.promote(name, version)
    results.print(f"{promoted.name} v{promoted.version} is now the champion", highlight=False)


@mlflow_app.command("ui")
@reports_errors
def mlflow_ui(
    workspace: Workspace = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
) -> None:
    """Start the MLflow UI on this workspace's store (Ctrl-C stops it)."""
    import subprocess

    from retain.mlflow.tracking import tracking_uri, ui_command

    command = ui_command(workspace, host=host, port=port)
    if command is None:
        console.print(f"runs and models are on the tracking server {tracking_uri(workspace)}")
        return
    console.print(
        f"MLflow UI for {command[command.index('--backend-store-uri') + 1]} on "
        f"http://{host}:{port} (Ctrl-C stops it)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        code = subprocess.call(command)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
@reports_errors
def score(
    as_of: AsOf = None,
    data: DataDir = None,
    mapping: MappingFile = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Scoring config (default serving/score.yaml).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default serving/output/<as_of>).")
    ] = None,
    capacity: Annotated[int | None, typer.Option(help="Most customers to contact.")] = None,
    budget: Annotated[float | None, typer.Option(help="Most total action cost.")] = None,
    control_share: Annotated[
        float | None,
        typer.Option(
            "--control-share",
            help="Share of each action's selected customers held out as a control group, in "
            "[0, 1) (default serving/score.yaml, 0.10).",
        ),
    ] = None,
    strict: Annotated[
        bool | None, typer.Option("--strict/--no-strict", help="Refuse to write on drift.")
    ] = None,
    pseudonymize: Annotated[
        bool | None,
        typer.Option("--pseudonymize/--no-pseudonymize", help="Keyed-HMAC customer ids."),
    ] = None,
    workspace: Workspace = Path("."),
    engine: Engine = None,
    spark_config: SparkConfig = None,
) -> None:
    """Score active customers and write the ranked retention-priority list.

    A report.html in the output folder is regenerated from the new list.
    """
    from retain.progress import step_printer
    from retain.reports.html import render_report
    from retain.serving.score import score as score_list

    cutoff = _parse_date(as_of, "--as-of") if as_of is not None else None
    result = score_list(
        cutoff, workspace=workspace, data=data, mapping=mapping, config_path=config, out=out,
        strict=strict, pseudonymize_ids=pseudonymize, capacity=capacity, budget=budget,
        control_share=control_share, progress=step_printer("score"), engine=engine,
        spark_config=spark_config, render_report=render_report,
    )  # fmt: skip
    _print_list(result)


def _print_list(result) -> None:
    from retain.quickstart import show_top
    from retain.serving.contract import REPORT_FILE
    from retain.serving.sheets import CONTACTS_CSV

    for name in result.summary["drift"].get("drifted", []):
        psi = result.summary["drift"]["psi"][name]
        console.print(f"[yellow]warning:[/yellow] feature {name} drifted (PSI {psi:.3f})")
    show_top(result, console=results)
    models = result.summary["models"]
    results.print(
        "models: " + ", ".join(
            f"{family} v{model['version']} ({model.get('estimator', '?')})"
            for family, model in models.items()
        ),
        highlight=False, overflow="fold",
    )  # fmt: skip
    results.print(f"list: {result.out}", highlight=False, overflow="fold")
    results.print(f"contacts: {result.out / CONTACTS_CSV}", highlight=False, overflow="fold")
    experiment = result.summary.get("experiment", {})
    if experiment.get("control"):
        results.print(
            f"control group: {experiment['control']:,} selected customers held out, not to be "
            f"contacted; campaign log: {result.out / experiment['campaign_log']}"
            if experiment.get("campaign_log")
            else f"control group: {experiment['control']:,} selected customers held out",
            highlight=False, overflow="fold",
        )  # fmt: skip
    gains = result.summary.get("gains", {})
    if gains and not gains.get("measured"):
        results.print(f"note: {gains['note']}", highlight=False, overflow="fold")
    if result.report is not None:
        report = result.out / REPORT_FILE
        results.print(f"report: {report} ({result.report})", highlight=False, overflow="fold")


@app.command()
@reports_errors
def profitability(
    as_of: AsOf = None,
    data: DataDir = None,
    mapping: MappingFile = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default serving/profitability/<as_of>)."),
    ] = None,
    workspace: Workspace = Path("."),
    engine: Engine = None,
    spark_config: SparkConfig = None,
) -> None:
    """Write each customer's profit and loss, and the tables of where money is lost."""
    from retain.progress import step_printer
    from retain.serving.profitability import print_profitability
    from retain.serving.profitability import profitability as run_profitability

    cutoff = _parse_date(as_of, "--as-of") if as_of is not None else None
    result = run_profitability(
        cutoff, workspace=workspace, data=data, mapping=mapping, out=out, engine=engine,
        spark_config=spark_config, progress=step_printer("profitability"),
    )  # fmt: skip
    print_profitability(result, console=results)


ListPath = Annotated[
    Path, typer.Option("--list", help="A list folder (or its retention_priority.parquet).")
]


@app.command()
@reports_errors
def report(
    list_path: ListPath,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default: report.html beside the list)."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Customers shown in the top table.")] = 50,
) -> None:
    """Render the HTML report of a retention-priority list."""
    from retain.reports.html import default_report_path, render_report

    path = render_report(list_path, out or default_report_path(list_path), top=top)
    results.print(f"report: {path}", highlight=False, soft_wrap=True)


@app.command()
@reports_errors
def backtest(
    list_path: ListPath,
    data: DataDir = None,
    mapping: MappingFile = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for backtest_deciles.csv and .json.")
    ] = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial", help="Compute even when the churn window has not fully passed."
        ),
    ] = False,
    workspace: Workspace = Path("."),
    engine: Engine = None,
    spark_config: SparkConfig = None,
) -> None:
    """Compare a past list with what its customers actually did (each horizon once it passed)."""
    from retain.serving.backtest import backtest as run_backtest
    from retain.serving.backtest import check_backtest_out, print_backtest, write_backtest

    if out is not None:  # before any data are read
        check_backtest_out(out)
    settings = workspace_settings(workspace, data=data, mapping=mapping, engine=engine)
    folder, mapping_file = _data_and_mapping(workspace, settings)
    result = run_backtest(
        list_path, folder, mapping=mapping_file, workspace=workspace, allow_partial=allow_partial,
        engine=settings.engine, spark_config=spark_config,
    )  # fmt: skip
    print_backtest(result, console=results)
    if out is not None:
        paths = write_backtest(result, out)
        results.print(
            f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False, soft_wrap=True
        )


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
        results.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if not written:
        console.print(f"{folder} already has every default file (use --force to overwrite)")


@app.command()
@reports_errors
def quickstart(
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace", help="Folder for data, snapshots, runs and lists (default: this folder)."
        ),
    ] = Path("."),
    customers: Annotated[int, typer.Option(min=1, help="Number of simulated customers.")] = 20_000,
    seed: Annotated[
        int | None, typer.Option(help=f"Random seed (default: `seed` in {CONFIG_FILE}).")
    ] = None,
    campaigns: Annotated[
        bool,
        typer.Option(
            "--campaigns/--no-campaigns",
            help="Simulate randomised retention campaigns and train the uplift model on them: "
            "the list is ranked by its learned gains when it passes its gate.",
        ),
    ] = False,
) -> None:
    """Run the main job end to end on simulated data (stages built so far)."""
    from retain.quickstart import run_quickstart

    run_quickstart(workspace, customers=customers, seed=seed, campaigns=campaigns)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {text!r}", param_hint=option) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
