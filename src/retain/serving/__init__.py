"""The batch predictor: score active customers, explain, act, select, rank; backtest lists.

``retain score`` / :func:`score` writes the retention-priority list (see
:mod:`retain.serving.contract`); ``retain backtest`` / :func:`backtest` compares a past list
with what happened. See the README, section "Scoring".
"""

from retain.serving.backtest import BacktestResult, backtest, write_backtest
from retain.serving.score import ScoreResult, score

__all__ = ["BacktestResult", "ScoreResult", "backtest", "score", "write_backtest"]
