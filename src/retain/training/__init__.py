"""Training jobs: training sets from snapshots and labels, fit, evaluate, tune, track, register.

Run them with ``retain train churn|clv|segments|all`` and ``retain tune churn|clv``, or from
Python with :func:`run_training` / :func:`run_tuning`. See the README, section "Training".
"""

from retain.training.config import (
    ChurnConfig,
    CLVConfig,
    CutoffPlan,
    SegmentsConfig,
    TuningConfig,
    load_config,
)
from retain.training.cutoffs import CutoffSplit, IncompleteLabelWindowError, plan_cutoffs
from retain.training.dataset import TrainingSet, build_training_set
from retain.training.jobs import run_training, run_tuning
from retain.training.publish import JobResult

__all__ = [
    "CLVConfig",
    "ChurnConfig",
    "CutoffPlan",
    "CutoffSplit",
    "IncompleteLabelWindowError",
    "JobResult",
    "SegmentsConfig",
    "TrainingSet",
    "TuningConfig",
    "build_training_set",
    "load_config",
    "plan_cutoffs",
    "run_training",
    "run_tuning",
]
