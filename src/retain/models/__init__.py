"""retain.models: estimators for churn, customer lifetime value, segments and uplift."""

from retain.models.btyd_churn import BTYDChurnClassifier
from retain.models.churn import ChurnClassifier
from retain.models.clv import BGNBD, GammaGamma, ParetoNBD
from retain.models.clv.value import BTYDValue, CLVModel, MLValue
from retain.models.segments import SegmentModel
from retain.models.spend import SpendRegressor
from retain.models.uplift import UpliftModel

__all__ = [
    "BGNBD",
    "BTYDChurnClassifier",
    "BTYDValue",
    "CLVModel",
    "ChurnClassifier",
    "GammaGamma",
    "MLValue",
    "ParetoNBD",
    "SegmentModel",
    "SpendRegressor",
    "UpliftModel",
]
