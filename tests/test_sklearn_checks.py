"""scikit-learn's estimator checks (``parametrize_with_checks``) on the xgboost estimators.

The checks run on small random data with a few fast trees (the estimator instances below).
Where a check cannot apply, it is an expected failure with its reason; what it would have
covered otherwise is tested with churn labels in test_churn_model.py.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from retain.models import ChurnClassifier, SpendRegressor

FAST = {"learning_rate": 0.3, "n_jobs": 1}
#: ChurnClassifier's labels are 0/1 by design: which label is churn is not left to sort order.
CHURN_LABELS = (
    "labels are 0/1 with 1 = churn; ChurnClassifier refuses {labels} instead of deciding by "
    "their sort order which one means churn"
)


def expected_failures(estimator) -> dict[str, str]:
    """Checks that cannot apply to ``estimator``, with the reason."""
    if not isinstance(estimator, ChurnClassifier):
        return {}
    covered = " (test_numeric_arrays_of_any_dtype_and_their_containers covers the rest)"
    return {
        "check_classifiers_classes": CHURN_LABELS.format(labels="string labels"),
        "check_estimators_dtypes": CHURN_LABELS.format(labels="labels 1/2") + covered,
        "check_classifier_data_not_an_array": CHURN_LABELS.format(labels="labels 1/2") + covered,
    }


@parametrize_with_checks(
    [ChurnClassifier(n_estimators=20, **FAST), SpendRegressor(n_estimators=30, **FAST)],
    expected_failed_checks=expected_failures,
    xfail_strict=True,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_labels_other_than_0_1_are_refused_with_the_reason():
    """The expected failures fail for the stated reason, not another."""
    X = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    with pytest.raises(ValueError, match=r"0/1 labels \(1 = churn\); got a binary target"):
        ChurnClassifier(n_estimators=2).fit(X, [1, 2, 1, 2])
    with pytest.raises(ValueError, match="y must be numeric"):
        ChurnClassifier(n_estimators=2).fit(X, ["one", "two", "one", "two"])
