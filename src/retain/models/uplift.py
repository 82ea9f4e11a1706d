"""Uplift models: what a contact with each action changes, learned from randomised campaigns.

:class:`UpliftModel` estimates, per customer and action ``a``, the conditional average
treatment effect of contacting the customer with ``a`` instead of not contacting them, on two
outcomes over the horizon: the margin retained (``incremental_margin__<a>``, in money) and
churn, i.e. no purchase (``churn_effect__<a>``, a change in probability; negative = fewer
churn). It learns from logged randomised campaigns: the enrolled customers' point-in-time
features at each campaign date, the arm each was randomly given (an action or ``control``),
and their outcomes after it.

Three meta-learners on xgboost (Künzel, Sekhon, Bickel & Yu 2019 name them):

* **T-learner** (``learner="t"``): one outcome model per arm, ``mu_a(x) = E[Y | X=x, A=a]``;
  the effect of ``a`` is ``mu_a(x) - mu_control(x)``. Simple and unbiased under randomisation,
  but the difference of two separately regularised models is noisy where the arms' outcome
  surfaces differ more than their difference.
* **DR-learner** (``learner="dr"``; Kennedy 2023, "Towards optimal doubly robust estimation of
  heterogeneous causal effects", Electronic Journal of Statistics 17(2)): the T-learner's
  models, cross-fitted on ``cv_folds`` folds, give each row the doubly robust pseudo-outcome
  ``mu_a(x) - mu_0(x) + 1[A=a] (Y - mu_a(x)) / e_a(x) - 1[A=0] (Y - mu_0(x)) / e_0(x)``,
  whose expectation given ``x`` is the effect whatever the error of the outcome models; one
  regression of it on the features per action is the effect model.
* **X-learner** (``learner="x"``; Künzel et al. 2019): the T-learner's models impute each
  row's effect from the other arm's model (treated with ``a``: ``Y - mu_0(x)``; control:
  ``mu_a(x) - Y``); one regression of the imputed effects per arm, ``tau_a^1`` on the rows
  given ``a`` and ``tau_a^0`` on the controls, combined as
  ``e_a tau_a^0(x) + (1 - e_a) tau_a^1(x)`` with ``e_a`` the share of ``a`` among the rows of
  ``a`` and the controls, so the larger arm's imputations weigh more.

**Margin on the customer's own scale** (``scale_margin=True``): a customer's margin varies in
proportion to their value, so the outcome models would spend themselves on the noise of the
most valuable customers. The margin is divided by each customer's expected margin ``v(x)``
(an xgboost model of every training row, floored at ``margin_floor``), the effects are learned
on that scale and multiplied back by ``v(x)``; the effect in money is unchanged in
expectation when the effect is proportional to value, and the noise is even across customers.
On a 20,000-customer simulated world this raised the T-learner's share of the oracle's true
incremental margin at the top 5% from 3% to 10% (``benchmarks/uplift.py``).

**Structured margin effects** (``margin_effect="structured"``): the margin effect taken as
the churn effect times the margin of a customer who does not churn, ``-churn_effect_a(x) *
r(x)``. Churn is a 0/1 outcome, far less noisy than 90 days of margin, but a contact that
changes how much a retained customer buys is not seen. On the 20,000-customer simulated world
of seed 0 it captured 4.7% of the oracle's true incremental margin against 8.1% for the
direct effects, so it is an option, not the default.

**Pooled actions** (``pool_actions=True``, X-learner): one model per stage for every action,
the action a categorical input, so what the actions share (who can be moved at all: in the
simulator, the customers who are disengaging) is learned from every treated row instead of a
fifth of them each. Measured worse, so off by default: on the 20,000-customer worlds of seeds
0-2, 10.2%, -0.8% and -3.7% of the oracle against 13.7%, 10.4% and 10.8% for one model per
action (the action's input is one split among many, so the effect trees mostly ignore it and
the actions' opposite effects on the engaged customers blur).

The propensities ``e_a(x)`` are not estimated: the campaigns were randomised, so they are the
design's assignment shares (per campaign, passed as ``propensity``; else the arms' shares of
the rows). The training job fits the learners its config names (default the X-learner, the
best out of time on the benchmark's seeds) and serves the one with the highest
regression-adjusted Qini coefficient on the latest campaign (:mod:`retain.training.uplift`).

References
----------
Künzel, S. R., Sekhon, J. S., Bickel, P. J. & Yu, B. (2019). Metalearners for estimating
heterogeneous treatment effects using machine learning. *PNAS* 116(10), 4156-4165.

Kennedy, E. H. (2023). Towards optimal doubly robust estimation of heterogeneous causal
effects. *Electronic Journal of Statistics* 17(2), 3008-3049.

Gutierrez, P. & Gérardy, J.-Y. (2017). Causal inference and uplift modelling: a review of the
literature. *Proceedings of Machine Learning Research* 67, 1-13.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from retain.models._xgboost import check_frame, encode_features, learn_categories

__all__ = ["CONTROL", "LEARNERS", "OUTCOME_NAMES", "UpliftModel", "effect_columns"]

#: The arm of customers held out (not contacted).
CONTROL = "control"
#: Meta-learners :class:`UpliftModel` fits.
LEARNERS = ("t", "dr", "x")
#: Outcomes and the prefix of their effect columns.
OUTCOME_NAMES = {"margin": "incremental_margin", "churn": "churn_effect"}
#: How :class:`UpliftModel` learns the margin effects.
MARGIN_EFFECTS = ("direct", "structured")
#: Arms with fewer rows than this cannot be learned from.
MIN_ARM_ROWS = 10
# Churn probabilities are kept off 0 and 1 so that xgboost's logistic base score is finite.
PROBABILITY_CLIP = 1e-3


def effect_columns(actions: list[str]) -> list[str]:
    """The columns of :meth:`UpliftModel.predict_effects`, in order, for ``actions``."""
    return [f"{prefix}__{action}" for action in actions for prefix in OUTCOME_NAMES.values()]


class UpliftModel(BaseEstimator):
    """Multi-action uplift model on xgboost: effect of each action on margin and churn.

    Parameters
    ----------
    learner : {"t", "dr", "x"}, default="dr"
        Meta-learner: ``"t"`` (one outcome model per arm, effects as differences), ``"dr"``
        (doubly robust pseudo-outcomes from cross-fitted T-learner models, regressed on the
        features) or ``"x"`` (effects imputed from the other arm's model, regressed per arm
        and combined); see the module docstring.
    n_estimators : int, default=200
        Boosting rounds of every xgboost model.
    max_depth : int, default=3
        Tree depth.
    learning_rate : float, default=0.05
        Shrinkage.
    min_child_weight : float, default=20.0
        Least hessian weight in a leaf (rows, for squared error): effects are small against
        the noise of outcomes, so leaves are kept large.
    subsample : float, default=0.8
        Rows sampled per tree.
    colsample_bytree : float, default=0.8
        Features sampled per tree.
    reg_lambda : float, default=1.0
        L2 penalty on leaf weights.
    cv_folds : int, default=2
        Folds of the cross-fitting of the DR-learner's outcome models.
    scale_margin : bool, default=True
        Learn margin effects on each customer's own scale (see the module docstring).
    margin_floor : float, default=5.0
        Least expected margin ``v(x)`` the margin is divided by (keeps the scale off zero).
    margin_effect : {"direct", "structured"}, default="direct"
        How the margin effects are learned: ``"direct"``, by the meta-learner on the margin
        (on each customer's scale with ``scale_margin``); ``"structured"``, as the churn
        effect times the margin the customer brings if retained,
        ``-churn_effect__a(x) * r(x)``, with ``r(x)`` an xgboost model of the margin of every
        training row that did not churn (see the module docstring).
    pool_actions : bool, default=False
        X-learner only: one model for every action, the action a categorical input, in each
        stage (the treated rows' outcome, the effects imputed on the treated rows and on the
        control rows), instead of one per action; what the actions share (who can be moved at
        all) is learned from every treated row (see the module docstring).
    random_state : int, default=0
        Seed of the folds and of xgboost's sampling.
    n_jobs : int, optional
        Threads of xgboost (default: xgboost's).

    Attributes
    ----------
    actions_ : list of str
        The actions, in the order of their effect columns (every arm but ``control``).
    arms_ : list of str
        ``control`` and the actions.
    propensity_ : dict of str to float
        Mean assignment probability of each arm over the training rows.
    feature_names_in_ : numpy.ndarray of str
        Feature columns seen in fit.
    categories_ : dict of str to list of str
        Categories of the categorical columns.
    models_ : dict of str to dict of str to xgboost.XGBRegressor
        Per outcome (``margin``, ``churn``), the fitted models: per arm (T-learner), per
        action (DR-learner) or per action ``<a>`` and ``<a>|control`` (X-learner: the
        regressions on the treated and on the control rows).
    x_weights_ : dict of str to float
        X-learner only: per action ``a``, the weight ``e_a`` of the control rows' regression.
    n_rows_ : dict of str to int
        Training rows per arm.
    scale_model_ : xgboost.XGBRegressor or None
        The expected margin ``v(x)`` with ``scale_margin``, else ``None``.
    retained_model_ : xgboost.XGBRegressor or None
        With ``margin_effect="structured"``, the margin ``r(x)`` of a customer who does not
        churn, else ``None``.

    Examples
    --------
    >>> model = UpliftModel(learner="t", n_estimators=20).fit(X, margin, churned, arm)
    ... # doctest: +SKIP
    >>> model.predict_effects(X)["incremental_margin__win_back_offer"]  # doctest: +SKIP
    """

    def __init__(
        self,
        learner: str = "dr",
        n_estimators: int = 200,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        min_child_weight: float = 20.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        cv_folds: int = 2,
        scale_margin: bool = True,
        margin_floor: float = 5.0,
        margin_effect: str = "direct",
        pool_actions: bool = False,
        random_state: int = 0,
        n_jobs: int | None = None,
    ):
        self.learner = learner
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.cv_folds = cv_folds
        self.scale_margin = scale_margin
        self.margin_floor = margin_floor
        self.margin_effect = margin_effect
        self.pool_actions = pool_actions
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------- fitting

    def fit(
        self,
        X: pd.DataFrame,
        margin: ArrayLike,
        churned: ArrayLike,
        treatment: ArrayLike,
        propensity: pd.DataFrame | None = None,
    ) -> UpliftModel:
        """Fit the effect models on the rows of randomised campaigns.

        Parameters
        ----------
        X : pandas.DataFrame
            Point-in-time features at each row's campaign date (numeric and categorical
            columns).
        margin : array-like of shape (n,)
            Margin of each row over the horizon after its campaign date.
        churned : array-like of shape (n,)
            1 (or True) when the row made no purchase over the horizon.
        treatment : array-like of str, shape (n,)
            The arm of each row: an action's name, or ``"control"``.
        propensity : pandas.DataFrame, optional
            Per row (indexed like ``X``), the design's probability of each arm (a column per
            arm, ``control`` included), e.g. the arm shares of the row's campaign. Default:
            every arm's share of all rows (one randomised design).

        Returns
        -------
        UpliftModel
            Fitted, ``self``.

        Raises
        ------
        ValueError
            Unknown settings, lengths that differ, non-finite outcomes, no ``control`` row or
            no action, an arm with fewer than 10 rows, or propensities outside (0, 1].
        """
        self._check_settings()
        X = check_frame(X)
        n = len(X)
        margin = _vector(margin, "margin", n)
        churned = _vector(churned, "churned", n)
        if not np.all((churned == 0) | (churned == 1)):
            raise ValueError("churned must hold 0 and 1 (or booleans)")
        arm = np.asarray(treatment, dtype=object)
        if arm.shape != (n,):
            raise ValueError(f"treatment must have one value per row ({n}); got {arm.shape}")
        arm = arm.astype(str)
        names, counts = np.unique(arm, return_counts=True)
        rows = dict(zip(names.tolist(), counts.tolist(), strict=True))
        actions = sorted(name for name in rows if name != CONTROL)
        if CONTROL not in rows or not actions:
            raise ValueError(
                f"an uplift model needs control rows and treated rows; arms found: {rows}"
            )
        few = {name: count for name, count in rows.items() if count < MIN_ARM_ROWS}
        if few:
            raise ValueError(f"arms with fewer than {MIN_ARM_ROWS} rows: {few}")
        arms = [CONTROL, *actions]
        shares = self._propensity(propensity, X, arm, arms)

        self.categories_ = learn_categories(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        encoded = encode_features(X, list(X.columns), self.categories_)
        self.scale_model_ = self.retained_model_ = None
        if self.margin_effect == "structured":
            kept = churned == 0
            if kept.sum() < MIN_ARM_ROWS:
                raise ValueError(
                    f"margin_effect='structured' needs at least {MIN_ARM_ROWS} rows that did "
                    f"not churn; got {int(kept.sum())}"
                )
            self.retained_model_ = self._fit_one("margin", encoded[kept], margin[kept])
            outcomes = {"churn": churned}
        else:
            if self.scale_margin:
                self.scale_model_ = self._fit_one("margin", encoded, margin)
                margin = margin / self._scale(encoded)
            outcomes = {"margin": margin, "churn": churned}
        if self.learner == "t":
            self.models_ = {
                name: self._arm_models(encoded, values, arm, arms, name)
                for name, values in outcomes.items()
            }
        elif self.learner == "dr":
            self.models_ = {
                name: self._dr_models(encoded, values, arm, arms, shares, name)
                for name, values in outcomes.items()
            }
        else:
            self.models_ = {
                name: (self._pooled_x_models if self.pool_actions else self._x_models)(
                    encoded, values, arm, arms, name
                )
                for name, values in outcomes.items()
            }
            self.x_weights_ = {
                name: float(rows[name] / (rows[name] + rows[CONTROL])) for name in actions
            }
        self.actions_, self.arms_ = actions, arms
        self.propensity_ = {name: float(shares[name].mean()) for name in arms}
        self.n_rows_ = {name: int(rows[name]) for name in arms}
        return self

    def _check_settings(self) -> None:
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {', '.join(LEARNERS)}; got {self.learner!r}")
        for name in ("n_estimators", "max_depth", "cv_folds"):
            value = getattr(self, name)
            least = 2 if name == "cv_folds" else 1
            if not isinstance(value, Integral) or value < least:
                raise ValueError(f"{name} must be a whole number, at least {least}; got {value!r}")
        for name in ("learning_rate", "subsample", "colsample_bytree"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not 0 < value <= 1:
                raise ValueError(f"{name} must lie in (0, 1]; got {value!r}")
        if self.margin_effect not in MARGIN_EFFECTS:
            raise ValueError(
                f"margin_effect must be one of {', '.join(MARGIN_EFFECTS)}; "
                f"got {self.margin_effect!r}"
            )
        if not isinstance(self.pool_actions, bool):
            raise ValueError(f"pool_actions must be true or false; got {self.pool_actions!r}")
        if not isinstance(self.scale_margin, bool):
            raise ValueError(f"scale_margin must be true or false; got {self.scale_margin!r}")
        for name in ("min_child_weight", "reg_lambda", "margin_floor"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not value >= 0:
                raise ValueError(f"{name} must be 0 or more; got {value!r}")

    @staticmethod
    def _propensity(
        propensity: pd.DataFrame | None, X: pd.DataFrame, arm: np.ndarray, arms: list[str]
    ) -> pd.DataFrame:
        if propensity is None:
            shares = {name: float(np.mean(arm == name)) for name in arms}
            return pd.DataFrame(shares, index=X.index)
        if not isinstance(propensity, pd.DataFrame) or not propensity.index.equals(X.index):
            raise ValueError("propensity must be a DataFrame indexed like X")
        missing = [name for name in arms if name not in propensity.columns]
        if missing:
            raise ValueError(f"propensity lacks the arms {missing}")
        values = propensity[arms].to_numpy(float)
        if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
            raise ValueError("propensities must lie in [0, 1]")
        given = values[np.arange(len(arm)), [arms.index(name) for name in arm]]
        if given.min() <= 0:
            raise ValueError("a row's own arm has propensity 0: it could not have been assigned")
        return propensity[arms]

    def _xgb(self, outcome: str, base: float) -> xgb.XGBRegressor:
        """One outcome model: squared error on margin, logistic on churn (a probability)."""
        objective = "reg:logistic" if outcome == "churn" else "reg:squarederror"
        return xgb.XGBRegressor(
            objective=objective,
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            base_score=base,
            tree_method="hist",
            enable_categorical=True,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _fit_one(self, outcome: str, X: pd.DataFrame, y: np.ndarray) -> xgb.XGBRegressor:
        base = float(np.mean(y))
        if outcome == "churn":  # a logistic base score must lie strictly inside (0, 1)
            base = float(np.clip(base, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP))
        return self._xgb(outcome, base).fit(X, y)

    def _arm_models(
        self, X: pd.DataFrame, y: np.ndarray, arm: np.ndarray, arms: list[str], outcome: str
    ) -> dict[str, xgb.XGBRegressor]:
        """T-learner: one model of the outcome per arm."""
        return {name: self._fit_one(outcome, X[arm == name], y[arm == name]) for name in arms}

    def _dr_models(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        arm: np.ndarray,
        arms: list[str],
        shares: pd.DataFrame,
        outcome: str,
    ) -> dict[str, xgb.XGBRegressor]:
        """DR-learner: cross-fitted arm models, pseudo-outcomes, one regression per action."""
        predicted = np.zeros((len(X), len(arms)))
        folds = KFold(self.cv_folds, shuffle=True, random_state=self.random_state)
        for fit_rows, held_out in folds.split(X):
            models = self._arm_models(X.iloc[fit_rows], y[fit_rows], arm[fit_rows], arms, outcome)
            for column, name in enumerate(arms):
                predicted[held_out, column] = models[name].predict(X.iloc[held_out])
        control = arm == CONTROL
        residual_control = np.where(control, (y - predicted[:, 0]) / shares[CONTROL], 0.0)
        fitted = {}
        for column, name in enumerate(arms[1:], start=1):
            given = arm == name
            pseudo = (
                predicted[:, column]
                - predicted[:, 0]
                + np.where(given, (y - predicted[:, column]) / shares[name], 0.0)
                - residual_control
            )
            regression = self._xgb("margin", float(np.mean(pseudo)))
            fitted[name] = regression.fit(X, pseudo)  # squared error on the pseudo-outcome
        return fitted

    def _x_models(
        self, X: pd.DataFrame, y: np.ndarray, arm: np.ndarray, arms: list[str], outcome: str
    ) -> dict[str, xgb.XGBRegressor]:
        """X-learner: arm models, effects imputed across arms, two regressions per action."""
        first = self._arm_models(X, y, arm, arms, outcome)
        control = arm == CONTROL
        fitted = {}
        for name in arms[1:]:
            given = arm == name
            imputed_treated = y[given] - first[CONTROL].predict(X[given])
            imputed_control = first[name].predict(X[control]) - y[control]
            # The imputed effects are differences of margins or of probabilities: squared error.
            fitted[name] = self._xgb("margin", float(np.mean(imputed_treated))).fit(
                X[given], imputed_treated
            )
            fitted[f"{name}|{CONTROL}"] = self._xgb("margin", float(np.mean(imputed_control))).fit(
                X[control], imputed_control
            )
        return fitted

    def _pooled_x_models(
        self, X: pd.DataFrame, y: np.ndarray, arm: np.ndarray, arms: list[str], outcome: str
    ) -> dict[str, xgb.XGBRegressor]:
        """X-learner with the actions pooled: the same three stages, each one model with the
        action as an input (``treated``: effects imputed on the treated rows; ``control``:
        on the control rows, once per action)."""
        actions = arms[1:]
        control, treated = arm == CONTROL, arm != CONTROL
        first_control = self._fit_one(outcome, X[control], y[control])
        with_action = _with_action(X[treated], arm[treated], actions)
        first_treated = self._fit_one(outcome, with_action, y[treated])
        imputed_treated = y[treated] - first_control.predict(X[treated])
        stacked = pd.concat(
            [_with_action(X[control], np.full(control.sum(), name), actions) for name in actions]
        )
        imputed_control = first_treated.predict(stacked) - np.tile(y[control], len(actions))
        return {
            "treated": self._xgb("margin", float(np.mean(imputed_treated))).fit(
                with_action, imputed_treated
            ),
            CONTROL: self._xgb("margin", float(np.mean(imputed_control))).fit(
                stacked, imputed_control
            ),
        }

    # ----------------------------------------------------------------------------- predicting

    def predict_effects(self, X: pd.DataFrame) -> pd.DataFrame:
        """Effect of each action on each row's margin and churn over the horizon.

        Parameters
        ----------
        X : pandas.DataFrame
            Features (the training columns; extra columns are ignored).

        Returns
        -------
        pandas.DataFrame
            Indexed like ``X``; for each action ``a`` (in :attr:`actions_` order)
            ``incremental_margin__<a>`` (expected extra margin over the horizon if contacted
            with ``a``, in money) and ``churn_effect__<a>`` (change in the probability of
            churn: negative = fewer churn).
        """
        check_is_fitted(self, "models_")
        X = check_frame(X)
        encoded = encode_features(X, list(self.feature_names_in_), self.categories_)
        scale = self._scale(encoded) if self.scale_model_ is not None else 1.0
        retained = None
        if getattr(self, "retained_model_", None) is not None:
            retained = np.maximum(self.retained_model_.predict(encoded).astype(np.float64), 0.0)
        columns = {}
        for action in self.actions_:
            churn = self._effect(encoded, "churn", action)
            if retained is None:
                margin = self._effect(encoded, "margin", action) * scale
            else:  # a churn prevented keeps the margin of a retained customer
                margin = -churn * retained
            columns[f"incremental_margin__{action}"] = margin
            columns[f"churn_effect__{action}"] = churn
        return pd.DataFrame(columns, index=X.index)

    def _scale(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's expected margin ``v(x)``, floored at ``margin_floor``."""
        expected = self.scale_model_.predict(X).astype(np.float64)
        return np.maximum(expected, float(self.margin_floor))

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """The same as :meth:`predict_effects` (what the model's pyfunc flavour calls)."""
        return self.predict_effects(X)

    def _effect(self, X: pd.DataFrame, outcome: str, action: str) -> np.ndarray:
        models = self.models_[outcome]
        if self.learner == "t":
            effect = models[action].predict(X) - models[CONTROL].predict(X)
        elif self.learner == "x" and "treated" in models:  # pool_actions
            weight = self.x_weights_[action]
            X = _with_action(X, np.full(len(X), action), self.actions_)
            from_controls = models[CONTROL].predict(X).astype(np.float64)
            effect = weight * from_controls + (1 - weight) * models["treated"].predict(X)
        elif self.learner == "x":
            weight = self.x_weights_[action]
            from_controls = models[f"{action}|{CONTROL}"].predict(X).astype(np.float64)
            effect = weight * from_controls + (1 - weight) * models[action].predict(X)
        else:
            effect = models[action].predict(X)
        effect = effect.astype(np.float64)
        if outcome == "churn":  # a change of a probability lies in [-1, 1]
            effect = np.clip(effect, -1.0, 1.0)
        return effect


#: The input column of the action in the pooled X-learner's models.
ACTION_INPUT = "__action"


def _with_action(X: pd.DataFrame, action: np.ndarray, actions: list[str]) -> pd.DataFrame:
    """``X`` with the action of each row as a categorical input."""
    return X.assign(**{ACTION_INPUT: pd.Categorical(action, categories=actions)})


def _vector(values: ArrayLike, name: str, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} must have one value per row ({n}); got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds {int((~np.isfinite(array)).sum())} non-finite value(s)")
    return array
