"""Probabilistic customer-lifetime-value models (buy-till-you-die family).

- :class:`BGNBD`: purchase counts, beta-geometric dropout (Fader, Hardie & Lee 2005).
- :class:`ParetoNBD`: purchase counts, exponential lifetimes (Schmittlein et al. 1987).
- :class:`GammaGamma`: average transaction value (Fader, Hardie & Lee 2005).
"""

from retain.models.clv.bgnbd import BGNBD
from retain.models.clv.gamma_gamma import GammaGamma
from retain.models.clv.pareto_nbd import ParetoNBD

__all__ = ["BGNBD", "GammaGamma", "ParetoNBD"]
