"""retain.models: estimators for churn, customer lifetime value and segments."""

from retain.models.clv import BGNBD, GammaGamma, ParetoNBD

__all__ = ["BGNBD", "GammaGamma", "ParetoNBD"]
