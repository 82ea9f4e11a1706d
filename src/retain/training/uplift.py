"""``retain train uplift``: uplift models from logged randomised campaigns, judged out of time.

Rows are the customers each campaign enrolled (treatment and control) who were active at its
cutoff, the day of its first contact, with their features at that cutoff (snapshots of the
feature store, as for every training set) and their outcomes over the ``horizon_days`` after
it (:func:`retain.engines.rules.campaign_rows`, through the workspace's engine). The latest
campaign whose outcome window the data cover validates; the earlier ones train. Each
meta-learner of ``learners`` (:class:`~retain.models.UpliftModel`, propensities from each
campaign's own assignment shares) is fitted on the training campaigns and judged on the
validation campaign; the one with the highest gate measure (below) serves, refitted
on every campaign when ``refit`` is set (the reported metrics stay those before the refit).

What is measured on the validation campaign (:mod:`retain.metrics.uplift`), for the top
``capacity`` share of its customers:

* **Incremental profit at capacity**, overall and per action: the treated-minus-control
  margin of the customers ranked first, times their number, less the contacts' cost. Overall,
  each customer is recommended an action and the rows that got it, or were held out, judge
  the ranking (Zhao, Fang & Simchi-Levi 2017); per action, the rows of that action and the
  controls.
* **Qini coefficient** and **AUUC** of the same rankings.
* The rankings compared: the uplift model (by expected net gain of its best action),
  **random** targeting, **churn probability** and **value at risk** (churn probability times
  the margin if retained, from xgboost models fitted on the training campaigns' control rows,
  i.e. untreated behaviour), each baseline with the action of the highest average net gain in
  the training campaigns. On simulated data (``truth.parquet``) also the **oracle** and the
  true incremental margin each ranking captures (:func:`retain.data.oracle.oracle_uplift`).

The model is registered as ``retain-uplift`` and gated on the **regression-adjusted Qini
coefficient** of the validation campaign (``GATE_MEASURE``, ``adjusted_qini``; the config's
``primary_metric`` may name another measure): it is not
promoted unless it beats ranking by churn probability and by value at risk, and the learner
served is the one with the highest. Two changes make the measure steadier than incremental
profit at capacity on the observed margin, while staying unbiased:

* **All depths.** The Qini coefficient averages the incremental margin over every depth of
  targeting, so it rests on every validation row, not on the few hundred of the top share.
* **Regression adjustment** (Lin 2013; the CUPED of online experiments, Deng et al. 2013):
  the margin less each row's expected margin without a contact, predicted by the baselines'
  models of the *training* campaigns' control rows. The assignment was random and the
  prediction a fixed function of the features, so the treated-minus-control difference keeps
  its expectation at every depth; what the features explain of a customer's spend (most of
  the noise) drops out.

A seeded bootstrap of the validation rows, logged as ``gate_<measure>_lead_*`` metrics, gives
the 90% interval of the model's lead over each baseline and the share of resamples in which it
leads, for the plain and adjusted Qini coefficient and incremental profit at capacity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from retain import plots
from retain.data.schemas import TABLES
from retain.engines import Engine, get_engine
from retain.errors import RetainError
from retain.features import FeatureStore, SourceData, categorical
from retain.metrics.uplift import (
    auuc,
    effect_at_capacity,
    effect_qini_coefficient,
    incremental_profit_at_capacity,
    incremental_profit_curve,
    matched_treatment,
    qini_coefficient,
    qini_curve,
)
from retain.models._xgboost import encode_features, learn_categories
from retain.models.uplift import CONTROL, UpliftModel
from retain.progress import ProgressReporter, null_progress
from retain.training.config import UpliftConfig
from retain.training.dataset import (
    KEY,
    TrainingWarning,
    costless_features,
    data_span,
    leave_out_uninformative,
    model_features,
)
from retain.training.publish import JobResult, publish

__all__ = [
    "GATE_MEASURE",
    "RANKINGS",
    "UpliftEvaluation",
    "UpliftRows",
    "arm_propensities",
    "build_uplift_rows",
    "evaluate_uplift",
    "train_uplift",
    "uplift_figures",
    "validation_curves",
]

#: The measure the learners are chosen and the model is gated on by default (the config's
#: ``primary_metric``; see the module docstring).
GATE_MEASURE = "adjusted_qini"
#: Measures whose model-minus-baseline difference is bootstrapped, and the baselines.
BOOTSTRAP_MEASURES = (
    "qini",
    "incremental_profit_at_capacity",
    "adjusted_qini",
    "adjusted_incremental_profit_at_capacity",
)
GATE_BASELINES = ("churn_probability", "value_at_risk")
BOOTSTRAP_RESAMPLES = 200
#: Rankings compared on the validation campaign (``oracle`` on simulated data only).
RANKINGS = ("model", "random", "churn_probability", "value_at_risk", "oracle")
ARM = "arm"
MARGIN, CHURNED = "future_margin", "churned"
#: xgboost settings of the churn and margin-if-retained baselines.
BASELINE_TREES = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05,
                  "min_child_weight": 20.0, "subsample": 0.8}  # fmt: skip


@dataclass(frozen=True)
class UpliftRows:
    """The campaign rows of an uplift training run.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``customer_id``, ``as_of``, ``campaign_id``, ``action``, ``group``, ``cost``, the
        features, the outcomes, ``split`` and ``arm`` (the action, or ``control``).
    features : tuple of str
        Model input columns.
    propensity : pandas.DataFrame
        Per row, each arm's share of its campaign (the design's assignment probability).
    costs : dict of str to float
        Mean cost of a contact per action over the treated training rows (0 when unknown).
    manifest : dict
        What the rows are made of, for tracking.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    propensity: pd.DataFrame
    costs: dict[str, float]
    manifest: dict

    def part(self, name: str) -> pd.DataFrame:
        """The ``train`` or ``validation`` rows."""
        return self.frame[self.frame["split"] == name]


def _campaigns(sources: SourceData) -> Any:
    log = sources.logs.get("campaigns")
    if log is None or log.num_rows == 0:
        raise RetainError(
            f"no campaign history: the data ({sources.origin or 'in memory'}) have no rows in "
            "the campaigns table (campaigns.csv or campaigns.parquet: customer_id, timestamp, "
            "campaign_id, action, group, cost); uplift models learn from logged randomised "
            "campaigns"
        )
    wanted = [column.name for column in TABLES["campaigns"].columns]
    return log.select([name for name in wanted if name in log.column_names])


def plan_campaigns(
    cutoffs: pd.DataFrame, data_end: date, horizon_days: int
) -> tuple[list[date], list[date], list[str]]:
    """Training and validation cutoffs from the campaigns' cutoffs, and notes on those left out.

    Raises
    ------
    RetainError
        A campaign on or after ``data_end`` (the day after the last event: contacts logged
        after the data), or fewer than two campaigns whose outcome window the data cover.
    """
    late = cutoffs[cutoffs["last_day"] >= data_end]
    if len(late):
        shown = ", ".join(
            f"{row.campaign_id} ({row.last_day})" for row in late.head(5).itertuples()
        )
        raise RetainError(
            f"campaigns after the cutoff: the campaigns table has {len(late)} campaign(s) with "
            f"contacts on or after {data_end}, the day after the last transaction or "
            f"interaction: {shown}; export the campaigns and the events up to the same day"
        )
    complete = cutoffs[[day + timedelta(days=horizon_days) <= data_end for day in cutoffs["as_of"]]]
    notes = []
    immature = cutoffs.loc[~cutoffs.index.isin(complete.index), "campaign_id"].tolist()
    if immature:
        notes.append(
            f"left out {len(immature)} campaign(s) whose {horizon_days}-day outcome window "
            f"runs past the data (ending {data_end}): {', '.join(immature[:5])}"
        )
    days = sorted(set(complete["as_of"]))
    if len(days) < 2:
        raise RetainError(
            f"too little campaign history to learn from: the campaigns table has "
            f"{len(cutoffs)} campaign(s), {len(days)} with a complete {horizon_days}-day outcome "
            f"window before {data_end}; at least 2 are needed (the earlier to train, the latest "
            "to validate)"
        )
    return days[:-1], days[-1:], notes


def arm_propensities(frame: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Each arm's share of the rows of each row's campaign: the randomised design's
    assignment probability, indexed like ``frame``."""
    counts = pd.crosstab(frame["campaign_id"], frame[ARM])
    shares = counts.div(counts.sum(axis=1), axis=0).reindex(columns=arms, fill_value=0.0)
    return shares.loc[frame["campaign_id"]].set_axis(frame.index)


def _profile(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """``present`` and ``distinct`` (up to two) per feature, on the driver's rows."""
    present = [int(frame[name].notna().sum()) for name in features]
    distinct = [min(int(frame[name].nunique()), 2) for name in features]
    return pd.DataFrame({"present": present, "distinct": distinct}, index=list(features))


def build_uplift_rows(
    config: UpliftConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    engine: Engine | None = None,
    progress: ProgressReporter = null_progress,
) -> UpliftRows:
    """The campaigns' enrolled customers with features at each campaign's cutoff and outcomes.

    Raises
    ------
    RetainError
        No campaigns table or no rows in it, campaigns after the data, fewer than two
        campaigns with complete outcome windows, or an arm (control, an action) with fewer
        than ``min_arm_rows`` rows in a split (naming the counts).
    """
    engine = engine or get_engine()
    log = _campaigns(sources)
    first, data_end = data_span(sources)
    cutoffs = engine.campaign_cutoffs(log)
    training, validation, notes = plan_campaigns(cutoffs, data_end, config.horizon_days)
    for note in notes:
        warnings.warn(note, TrainingWarning, stacklevel=2)
    features = model_features(store, config)
    built = store.build(sources, [*training, *validation], progress=progress, engine=engine)
    frame = engine.campaign_rows(
        sources, log, [result.path for result in built], features, validation=validation,
        horizon_days=config.horizon_days, active_days=config.active_days,
        margin_rate=config.margin_rate,
    )  # fmt: skip
    used = {str(day) for day in [*training, *validation]}
    frame = frame[frame["as_of"].dt.date.astype(str).isin(used)].reset_index(drop=True)
    frame[ARM] = np.where(frame["group"] == "control", CONTROL, frame["action"].astype(object))
    _check_arms(frame, cutoffs, config.min_arm_rows)
    frame = categorical(frame, store.repository)
    train = frame[frame["split"] == "train"]
    expected = costless_features(store.repository, sources)
    features, left_out = leave_out_uninformative(features, _profile(train, features), expected)
    arms = [CONTROL, *sorted(set(train[ARM]) - {CONTROL})]
    frame = frame[frame[ARM].isin(arms)].reset_index(drop=True)  # actions never trained on
    treated = train[train[ARM] != CONTROL]
    costs = treated.groupby(ARM)["cost"].mean().fillna(0.0)
    manifest = {
        "training_cutoffs": [str(day) for day in training],
        "validation_cutoffs": [str(day) for day in validation],
        "data_end": str(data_end),
        "horizon_days": config.horizon_days,
        "active_days": config.active_days,
        "campaigns": {
            row.campaign_id: {"as_of": str(row.as_of), "enrolled": int(row.rows)}
            for row in cutoffs.itertuples()
        },
        "rows": {
            split: frame.loc[frame["split"] == split, ARM].value_counts().sort_index().to_dict()
            for split in ("train", "validation")
        },
        "train_rows": int((frame["split"] == "train").sum()),
        "validation_rows": int((frame["split"] == "validation").sum()),
        "data_fingerprint": sources.fingerprint,
        "data_origin": sources.origin,
        "feature_views": store.repository.versions,
        "features": list(features),
        "left_out_features": left_out,
        "snapshots": {str(result.as_of): result.snapshot_id for result in built},
        "engine": engine.name,
    }
    return UpliftRows(
        frame, features, arm_propensities(frame, arms),
        {name: float(costs.get(name, 0.0)) for name in arms[1:]}, manifest,
    )  # fmt: skip


def _check_arms(frame: pd.DataFrame, cutoffs: pd.DataFrame, minimum: int) -> None:
    counts = frame.groupby(["split", ARM]).size()
    problems = []
    for split in ("train", "validation"):
        found = counts.get(split, pd.Series(dtype=int))
        arms = found.to_dict() if len(found) else {}
        arms = {str(arm): int(n) for arm, n in arms.items()}
        if CONTROL not in arms or len(arms) < 2:
            problems.append(
                f"{split}: arms {arms or 'none'} (a control group and an action needed)"
            )
            continue
        few = {arm: n for arm, n in arms.items() if n < minimum}
        if few:
            problems.append(f"{split}: {few} below {minimum} rows (all arms: {arms})")
    if problems:
        raise RetainError(
            "too little campaign history to learn from: rows of enrolled customers active at "
            f"their campaign's first day per split and arm (campaigns table, {len(cutoffs)} "
            f"campaign(s); min_arm_rows {minimum}):\n  - " + "\n  - ".join(problems)
        )


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class UpliftEvaluation:
    """Validation results of an uplift model against the other rankings.

    Attributes
    ----------
    metrics : dict of str to float
        ``<ranking>_<measure>`` and ``<ranking>_<measure>__<action>`` (see :func:`evaluate_uplift`).
    rankings : pandas.DataFrame
        One row per ranking: its measures overall.
    per_action : pandas.DataFrame
        One row per ranking and action.
    curves : pandas.DataFrame
        Per ranking, its Qini and incremental-profit curves on the rows that got its
        recommended action or were held out (see :func:`validation_curves`).
    """

    metrics: dict[str, float]
    rankings: pd.DataFrame
    per_action: pd.DataFrame
    curves: pd.DataFrame


def _baselines(rows: UpliftRows, seed: int) -> tuple[Any, Any, dict[str, list[str]]]:
    """Churn probability and margin-if-retained models of untreated behaviour (the training
    campaigns' control rows)."""
    control = rows.part("train")
    control = control[control[ARM] == CONTROL]
    X = control[list(rows.features)]
    categories = learn_categories(X)
    encoded = encode_features(X, list(rows.features), categories)
    settings = {**BASELINE_TREES, "tree_method": "hist", "enable_categorical": True,
                "random_state": seed}  # fmt: skip
    churned = control[CHURNED].to_numpy(float)
    base = float(np.clip(churned.mean(), 1e-3, 1 - 1e-3))
    churn = xgb.XGBRegressor(objective="reg:logistic", base_score=base, **settings)
    churn.fit(encoded, churned)
    retained = churned == 0
    margin = xgb.XGBRegressor(objective="reg:squarederror", **settings)
    margin.fit(encoded[retained], control[MARGIN].to_numpy(float)[retained])
    return churn, margin, categories


def _mean_net_gains(rows: UpliftRows) -> pd.Series:
    """Per action, treated-minus-control mean margin less its cost, on the training rows."""
    train = rows.part("train")
    means = train.groupby(ARM)[MARGIN].mean()
    return pd.Series({a: means[a] - means[CONTROL] - rows.costs[a] for a in rows.costs})


def _scores(
    model: UpliftModel, rows: UpliftRows, valid: pd.DataFrame, baselines: tuple, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    """Per ranking: score, recommended action and per-action scores of the validation rows."""
    X = valid[list(rows.features)]
    actions = list(model.actions_)
    effects = model.predict_effects(X)
    net = pd.DataFrame(
        {a: effects[f"incremental_margin__{a}"] - rows.costs.get(a, 0.0) for a in actions}
    )
    best = net.to_numpy().argmax(axis=1)
    scored = {"model": (net.to_numpy().max(axis=1), np.asarray(actions, object)[best], net)}
    churn_model, margin_model, categories = baselines
    encoded = encode_features(X, list(rows.features), categories)
    churn = churn_model.predict(encoded).astype(float)
    at_risk = churn * np.maximum(margin_model.predict(encoded).astype(float), 0.0)
    gains = _mean_net_gains(rows).reindex(actions)
    single = np.full(len(valid), str(gains.idxmax()), dtype=object)
    noise = np.random.default_rng(seed).random(len(valid))  # a seeded random order
    for name, score in (("random", noise), ("churn_probability", churn),
                        ("value_at_risk", at_risk)):  # fmt: skip
        scored[name] = (score, single, pd.DataFrame({a: score for a in actions}, index=X.index))
    return scored


def evaluate_uplift(
    model: UpliftModel,
    rows: UpliftRows,
    *,
    capacity: float,
    seed: int,
    truth: pd.DataFrame | None = None,
    baselines: tuple | None = None,
) -> UpliftEvaluation:
    """Measure ``model`` and the other rankings on the validation campaign.

    Measures per ranking: ``incremental_profit_at_capacity`` (the top ``capacity`` share,
    money), ``qini`` (Qini coefficient of margin), ``auuc``, the same two on the
    regression-adjusted margin (``adjusted_incremental_profit_at_capacity``,
    ``adjusted_qini``: the margin less the expected margin without a contact, see the module
    docstring) and, with ``truth``,
    ``true_incremental_margin_at_capacity`` (what the top share really gains from its
    recommended actions), ``true_net_gain_at_capacity`` (less the costs),
    ``share_of_oracle`` and ``true_qini``. Per action ``a`` (suffix ``__a``): the same
    experiment measures on the rows given ``a`` or held out.
    """
    valid = rows.part("validation").reset_index(drop=True)
    baselines = baselines or _baselines(rows, seed)
    scored = _scores(model, rows, valid, baselines, seed)
    arm = valid[ARM].to_numpy(object)
    margin = valid[MARGIN].to_numpy(float)
    adjusted = margin - _untreated_margin(valid, rows, baselines)
    truths = None
    if truth is not None:
        truths = _true_effects(truth, valid, list(model.actions_), rows)
        net = truths["net"]
        best = net.to_numpy().argmax(axis=1)
        actions = np.asarray(net.columns, object)
        scored["oracle"] = (net.to_numpy().max(axis=1), actions[best], net)
    records, per_action, matched = [], [], {}
    for name, (score, recommended, by_action) in scored.items():
        record = {"ranking": name}
        keep, treated = matched_treatment(arm, recommended, control=CONTROL)
        cost = pd.Series(recommended).map(rows.costs).fillna(0.0).to_numpy(float)
        matched[name] = (keep, arm == recommended, score, cost)
        y, s = margin[keep], score[keep]
        record["incremental_profit_at_capacity"] = incremental_profit_at_capacity(
            y, s, treated, capacity, cost=cost[keep]
        )
        record["qini"] = qini_coefficient(y, s, treated)
        record["auuc"] = auuc(y, s, treated)
        record["adjusted_incremental_profit_at_capacity"] = incremental_profit_at_capacity(
            adjusted[keep], s, treated, capacity, cost=cost[keep]
        )
        record["adjusted_qini"] = qini_coefficient(adjusted[keep], s, treated)
        if truths is not None:
            gained = _chosen(truths["margin"], recommended)
            record["true_incremental_margin_at_capacity"] = effect_at_capacity(
                gained, score, capacity
            )
            record["true_net_gain_at_capacity"] = effect_at_capacity(gained - cost, score, capacity)
            record["true_qini"] = effect_qini_coefficient(gained, score)
        records.append(record)
        for action in model.actions_:
            rows_of = (arm == action) | (arm == CONTROL)
            y, s = margin[rows_of], by_action[action].to_numpy(float)[rows_of]
            given = arm[rows_of] == action
            entry = {"ranking": name, "action": action}
            entry["incremental_profit_at_capacity"] = incremental_profit_at_capacity(
                y, s, given, capacity, cost=rows.costs.get(action, 0.0)
            )
            entry["qini"] = qini_coefficient(y, s, given)
            if truths is not None:
                entry["true_incremental_margin_at_capacity"] = effect_at_capacity(
                    truths["margin"][action].to_numpy(float), by_action[action], capacity
                )
            per_action.append(entry)
    rankings = pd.DataFrame(records).set_index("ranking")
    if truths is not None:
        best = rankings.loc["oracle", "true_incremental_margin_at_capacity"]
        rankings["share_of_oracle"] = rankings["true_incremental_margin_at_capacity"] / best
    by_action = pd.DataFrame(per_action).set_index(["ranking", "action"])
    metrics = {
        f"{name}_{measure}": float(value)
        for name, row in rankings.iterrows()
        for measure, value in row.items()
    }
    metrics.update(
        {
            f"{name}_{measure}__{action}": float(value)
            for (name, action), row in by_action.iterrows()
            for measure, value in row.items()
        }
    )
    metrics.update(_bootstrap_gaps(margin, adjusted, matched, capacity, seed))
    curves = validation_curves(margin, matched)
    return UpliftEvaluation(metrics, rankings.reset_index(), by_action.reset_index(), curves)


#: Points per ranking of the logged curves (evenly spaced in customers targeted).
CURVE_POINTS = 201


def validation_curves(margin: np.ndarray, matched: dict[str, tuple]) -> pd.DataFrame:
    """Per ranking, the Qini curve and the incremental-profit curve of the validation campaign.

    Each ranking is judged on its own rows (those given its recommended action, and the
    controls), so the curves are drawn against the share of those rows targeted:
    ``ranking``, ``targeted`` (rows), ``share_targeted``, ``qini``
    (:func:`~retain.metrics.uplift.qini_curve`) and ``incremental_profit``
    (:func:`~retain.metrics.uplift.incremental_profit_curve`, net of the contacts' cost), at
    ``CURVE_POINTS`` evenly spaced depths (linear between the curves' own points).
    """
    parts = []
    for name, (keep, treated, score, cost) in matched.items():
        y, s, t = margin[keep], score[keep], treated[keep]
        counts, qini = qini_curve(y, s, t)
        profit_counts, profit = incremental_profit_curve(y, s, t, cost[keep])
        depth = np.unique(np.linspace(0, len(y), CURVE_POINTS).round())
        parts.append(pd.DataFrame({
            "ranking": name, "targeted": depth.astype(int), "share_targeted": depth / len(y),
            "qini": np.interp(depth, counts, qini),
            "incremental_profit": np.interp(depth, profit_counts, profit),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def uplift_figures(evaluation: UpliftEvaluation, capacity: float) -> dict[str, Any]:
    """The Qini and incremental-profit curves of the validation campaign, every ranking."""
    qini = evaluation.rankings.set_index("ranking")["qini"].to_dict()
    return {
        "plots/qini.png": plots.qini_curves_plot(evaluation.curves, qini),
        "plots/incremental_profit.png": plots.incremental_profit_plot(evaluation.curves, capacity),
    }


def _untreated_margin(valid: pd.DataFrame, rows: UpliftRows, baselines: tuple) -> np.ndarray:
    """Each validation row's expected margin without a contact, ``(1 - churn probability) x
    margin if retained``, from the baselines' models of the training campaigns' controls."""
    churn_model, margin_model, categories = baselines
    encoded = encode_features(valid[list(rows.features)], list(rows.features), categories)
    retained = 1.0 - churn_model.predict(encoded).astype(float)
    return retained * np.maximum(margin_model.predict(encoded).astype(float), 0.0)


def _bootstrap_gaps(
    margin: np.ndarray,
    adjusted: np.ndarray,
    matched: dict[str, tuple],
    capacity: float,
    seed: int,
) -> dict[str, float]:
    """How steady the model's lead over each baseline is, per measure of
    ``BOOTSTRAP_MEASURES``: the lead on the validation rows resampled with replacement
    (``BOOTSTRAP_RESAMPLES`` times, seeded), as ``gate_<measure>_lead_p05__<baseline>`` and
    ``_p95`` (the 90% interval) and ``gate_<measure>_lead_wins__<baseline>`` (the share of
    resamples in which the model leads)."""
    rng = np.random.default_rng(seed)
    n = len(margin)
    leads: dict[tuple[str, str], list[float]] = {}
    for _ in range(BOOTSTRAP_RESAMPLES):
        picked = rng.integers(0, n, n)
        found = {}
        for name in ("model", *GATE_BASELINES):
            keep, treated, score, cost = (values[picked] for values in matched[name])
            s, t = score[keep], treated[keep]
            if t.all() or not t.any():  # a resample without one of the groups says nothing
                break
            found[name] = {}
            for prefix, outcome in (("", margin), ("adjusted_", adjusted)):
                y = outcome[picked][keep]
                found[name][f"{prefix}qini"] = qini_coefficient(y, s, t)
                found[name][f"{prefix}incremental_profit_at_capacity"] = (
                    incremental_profit_at_capacity(y, s, t, capacity, cost=cost[keep])
                )
        else:
            for measure in BOOTSTRAP_MEASURES:
                for baseline in GATE_BASELINES:
                    lead = found["model"][measure] - found[baseline][measure]
                    leads.setdefault((measure, baseline), []).append(lead)
    out = {}
    for (measure, baseline), values in leads.items():
        values = np.asarray(values)
        out[f"gate_{measure}_lead_p05__{baseline}"] = float(np.quantile(values, 0.05))
        out[f"gate_{measure}_lead_p95__{baseline}"] = float(np.quantile(values, 0.95))
        out[f"gate_{measure}_lead_wins__{baseline}"] = float(np.mean(values > 0))
    return out


def _chosen(effects: pd.DataFrame, recommended: np.ndarray) -> np.ndarray:
    columns = {name: index for index, name in enumerate(effects.columns)}
    picks = np.array([columns[name] for name in recommended])
    return effects.to_numpy(float)[np.arange(len(effects)), picks]


def _true_effects(
    truth: pd.DataFrame, valid: pd.DataFrame, actions: list[str], rows: UpliftRows
) -> dict[str, pd.DataFrame]:
    """The oracle's true incremental margin (and net of cost) per validation row and action."""
    from retain.data.oracle import oracle_uplift

    as_of = pd.Timestamp(valid["as_of"].iloc[0]).date()
    horizon = int(rows.manifest["horizon_days"])
    effects = oracle_uplift(truth, as_of, horizon, actions)["incremental_margin"].unstack("action")
    margin = effects.reindex(valid[KEY].astype(str))[actions].fillna(0.0).set_axis(valid.index)
    net = margin - pd.Series(rows.costs)[actions]
    return {"margin": margin, "net": net}


# --------------------------------------------------------------------------- the job


def _verdict(rankings: pd.DataFrame, measure: str = GATE_MEASURE) -> tuple[bool, str]:
    """Whether the model's ``measure`` beats ranking by churn probability and by value at
    risk, and the comparison in words."""
    found = rankings.set_index("ranking")[measure]
    ours = found["model"]
    beaten = {name: found[name] for name in GATE_BASELINES}
    passed = all(ours > value for value in beaten.values())
    others = ", ".join(f"{name} {value:.2f}" for name, value in beaten.items())
    relation = "beats" if passed else "does not beat"
    return passed, f"{measure} {ours:.2f} {relation} {others}"


def fit_uplift(rows: UpliftRows, learner: str, settings: dict, seed: int, split: str | None):
    """An :class:`UpliftModel` of ``learner`` fitted on the ``split`` rows (every row with
    ``None``), with the design's propensities."""
    frame = rows.frame if split is None else rows.part(split)
    model = UpliftModel(**{**settings, "learner": learner, "random_state": seed})
    return model.fit(
        frame[list(rows.features)], frame[MARGIN], frame[CHURNED].astype(int), frame[ARM],
        propensity=rows.propensity.loc[frame.index],
    )  # fmt: skip


def train_uplift(
    config: UpliftConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    workspace: str = ".",
    truth: pd.DataFrame | None = None,
    progress: ProgressReporter = null_progress,
    engine: Engine | None = None,
) -> JobResult:
    """Build the campaign rows, fit and compare the learners, evaluate, track and register.

    Parameters
    ----------
    config : UpliftConfig
        Job settings (``training/uplift.yaml``).
    sources : SourceData
        Validated sources with a ``campaigns`` log.
    store : FeatureStore
        Where the snapshots at the campaigns' cutoffs are built or found.
    workspace : str, default="."
        Folder holding ``mlruns/``.
    truth : pandas.DataFrame, optional
        The simulator's truth: adds the oracle's ranking and true effects to the evaluation.
    progress : callable, optional
        Step reporter.
    engine : Engine, optional
        Builds the snapshots and the campaign rows (default: DuckDB).

    Returns
    -------
    JobResult

    Raises
    ------
    RetainError
        No campaign history or too little of it (see :func:`build_uplift_rows`).
    """
    progress("campaign rows")
    rows = build_uplift_rows(config, sources, store, engine=engine, progress=progress)
    settings = {key: value for key, value in config.model.items() if key != "learner"}
    baselines = _baselines(rows, config.seed)
    candidates, evaluations = {}, {}
    for learner in config.learners:
        progress(f"fit {learner}-learner")
        candidates[learner] = fit_uplift(rows, learner, settings, config.seed, "train")
        evaluations[learner] = evaluate_uplift(
            candidates[learner], rows, capacity=config.capacity, seed=config.seed, truth=truth,
            baselines=baselines,
        )  # fmt: skip
    gate = config.primary_metric  # GATE_MEASURE unless the config names another
    chosen = max(config.learners, key=lambda name: evaluations[name].metrics[f"model_{gate}"])
    evaluation, model = evaluations[chosen], candidates[chosen]
    metrics = dict(evaluation.metrics)
    for learner in config.learners:
        for measure in ("incremental_profit_at_capacity", "qini", gate, "share_of_oracle",
                        "true_incremental_margin_at_capacity"):  # fmt: skip
            value = evaluations[learner].metrics.get(f"model_{measure}")
            if value is not None:
                metrics[f"{learner}_learner_{measure}"] = value
    served = model
    if config.refit:
        progress("refit on every campaign")
        served = fit_uplift(rows, chosen, settings, config.seed, None)
        served.holdout_ = model
    valid = rows.part("validation")

    def score(candidate: Any) -> float:
        held_out = getattr(candidate, "holdout_", candidate)
        found = evaluate_uplift(
            held_out, rows, capacity=config.capacity, seed=config.seed, baselines=baselines
        )
        return found.metrics[f"model_{gate}"]

    progress("track and register")
    return publish(
        "uplift", served, config, rows.manifest, workspace=workspace,
        settings={"learner": chosen, "actions": list(model.actions_),
                  "costs": rows.costs},
        metrics=metrics, figures=uplift_figures(evaluation, config.capacity),
        tables={"evaluation/rankings.csv": evaluation.rankings,
                "evaluation/per_action.csv": evaluation.per_action,
                "evaluation/curves.csv": evaluation.curves},
        score=score, input_example=valid[list(rows.features)].head(5),
        predict_method="predict", baselines=_verdict(evaluation.rankings, gate),
        baselines_required=True,
    )  # fmt: skip
