"""Default parameters of the simulated retail world (a plain, JSON-serialisable dict).

Every number the simulator draws from lives here, so that ``World.params`` and
``simulation.json`` describe the world completely. Rates are per day unless named otherwise.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["CATEGORIES", "INTERACTION_TYPES", "default_params"]

# Product categories: share of orders in the population mix, price level (multiplies the
# gamma-gamma order value) and gross margin rate.
CATEGORIES: dict[str, dict[str, float]] = {
    "grocery": {"share": 0.20, "price_level": 0.55, "margin_rate": 0.22},
    "beauty": {"share": 0.12, "price_level": 0.80, "margin_rate": 0.48},
    "home": {"share": 0.14, "price_level": 1.30, "margin_rate": 0.36},
    "apparel": {"share": 0.18, "price_level": 1.00, "margin_rate": 0.52},
    "electronics": {"share": 0.08, "price_level": 2.60, "margin_rate": 0.14},
    "sports": {"share": 0.10, "price_level": 1.20, "margin_rate": 0.33},
    "toys": {"share": 0.08, "price_level": 0.90, "margin_rate": 0.40},
    "books": {"share": 0.10, "price_level": 0.60, "margin_rate": 0.28},
}

# The interaction vocabulary, in the order the simulator generates it.
INTERACTION_TYPES: tuple[str, ...] = (
    "support_ticket",
    "complaint",
    "web_visit",
    "app_login",
    "email_open",
    "email_click",
    "campaign_contact",
    "survey",
)

_DEFAULTS: dict[str, Any] = {
    # s(t) = weekly[weekday] x yearly(day of year), each normalised to mean 1.
    "seasonality": {
        "weekly": [0.93, 0.91, 0.93, 0.97, 1.05, 1.17, 1.04],  # Monday .. Sunday
        "yearly_bumps": [
            {"day_of_year": 338, "width_days": 18.0, "height": 0.80},  # Black Friday to Christmas
            {"day_of_year": 312, "width_days": 12.0, "height": 0.20},  # early November promotions
            {"day_of_year": 196, "width_days": 20.0, "height": 0.12},  # summer sales
            {"day_of_year": 28, "width_days": 22.0, "height": -0.22},  # January lull
        ],
    },
    # Relative activity per hour of the day (purchases and customer-initiated interactions).
    "diurnal": [
        0.30,
        0.18,
        0.12,
        0.10,
        0.10,
        0.18,
        0.45,
        0.85,
        1.15,
        1.35,
        1.45,
        1.55,
        1.75,
        1.65,
        1.45,
        1.40,
        1.40,
        1.50,
        1.70,
        1.95,
        2.05,
        1.85,
        1.25,
        0.65,
    ],  # fmt: skip
    "arrivals": {
        "initial_share": 0.30,  # share of customers in the opening cohort
        "initial_scale_days": 45.0,  # exponential decay of the opening cohort's signups
        "growth_per_year": 0.15,  # mild growth of steady arrivals
        "signup_lag_share": 0.30,  # share who sign up a few days before their first order
        "signup_lag_max_days": 14,
    },
    "acquisition_channels": {
        # share, lognormal acquisition cost (median, sigma), latent shifts (engagement, issue,
        # satisfaction): mildly different customer mixes per channel.
        "paid_search": {
            "share": 0.30,
            "cost_median": 38.0,
            "cost_sigma": 0.45,
            "shift": [0.0, 0.0, 0.0],
        },
        "social": {
            "share": 0.20,
            "cost_median": 24.0,
            "cost_sigma": 0.55,
            "shift": [0.10, 0.10, -0.15],
        },
        "referral": {
            "share": 0.12,
            "cost_median": 15.0,
            "cost_sigma": 0.25,
            "shift": [0.30, -0.10, 0.25],
        },
        "organic": {
            "share": 0.25,
            "cost_median": 3.0,
            "cost_sigma": 0.60,
            "shift": [0.20, 0.0, 0.10],
        },
        "affiliate": {
            "share": 0.13,
            "cost_median": 30.0,
            "cost_sigma": 0.40,
            "shift": [-0.25, 0.10, -0.10],
        },
    },
    # Region: share and a shift of the store channel's log-odds.
    "regions": {
        "north": {"share": 0.22, "store_shift": 0.0},
        "south": {"share": 0.28, "store_shift": 0.3},
        "east": {"share": 0.20, "store_shift": -0.2},
        "west": {"share": 0.20, "store_shift": -0.1},
        "central": {"share": 0.10, "store_shift": 0.5},
    },
    # Correlation of the latent propensities (engagement, issue, satisfaction), each N(0, 1).
    "latent_correlation": [[1.0, 0.0, 0.25], [0.0, 1.0, -0.40], [0.25, -0.40, 1.0]],
    "purchases": {
        "rate_mean": 0.055,  # population mean of the purchase rate while engaged
        "rate_shape": 0.9,  # gamma heterogeneity of the rate (NBD-style)
        "engagement_effect": 0.25,  # log-rate per unit of engagement (mean-preserving)
        "disengaged_multiplier": 0.6,  # purchase rate in the disengaging state, relative
    },
    # Gamma-gamma spend (Fader, Hardie & Lee 2005, "RFM and CLV"): order value ~ Gamma(p, nu_i),
    # nu_i ~ Gamma(q, gamma), times the category price level.
    "spend": {"p": 6.0, "q": 3.6, "gamma": 26.0},
    "category_loyalty": {"a": 2.0, "b": 2.0},  # Beta: share of orders from the favourite category
    "categories": CATEGORIES,
    "order_channels": {"app_base": -0.7, "app_engagement": 0.8, "store_base": -0.4},
    "quantity_extra_mean": 0.6,  # quantity = 1 + Poisson(mean)
    "returns": {
        "rate_mean": 0.0315,  # probability that an order is returned (Beta across customers)
        "rate_concentration": 60.0,
        "full_share": 0.6,  # share of returns that return the whole order
        "partial_low": 0.2,
        "partial_high": 0.8,
        "min_days": 1.0,
        "max_days": 30.0,
    },
    # Latent dropout chain Engaged -> Disengaging -> Dead, plus Engaged -> Dead (rates per day,
    # log-linear in the latent propensities; the chain moves at midnights).
    "dropout": {
        "kappa_base": 1.0 / 520.0,
        "kappa_effects": {"engagement": -0.75, "issue": 0.65, "satisfaction": -0.55},
        "kappa_noise": 0.25,
        "mu_base": 1.0 / 4000.0,
        "mu_effects": {"engagement": -0.30, "issue": 0.30, "satisfaction": -0.20},
        "delta_mean": 1.0 / 50.0,
        "delta_shape": 4.0,
    },
    # Customer-initiated interactions: rate while engaged, log-rate effects of the propensities,
    # rate multiplier while disengaging, whether the rate follows the seasonality, channels.
    "interactions": {
        "web_visit": {
            "rate": 0.0075,
            "effects": {"engagement": 0.6, "issue": 0.0, "satisfaction": 0.0},
            "disengaged_multiplier": 0.15,
            "seasonal": True,
            "channels": {"web": 1.0},
        },
        "app_login": {
            "rate": 0.0050,
            "effects": {"engagement": 0.9, "issue": 0.0, "satisfaction": 0.0},
            "disengaged_multiplier": 0.15,
            "seasonal": True,
            "channels": {"app": 1.0},
        },
        "support_ticket": {
            "rate": 0.0008,
            "effects": {"engagement": 0.0, "issue": 0.6, "satisfaction": -0.1},
            "disengaged_multiplier": 3.0,
            "seasonal": False,
            "channels": {"phone": 0.40, "chat": 0.35, "email": 0.25},
        },
        "complaint": {
            "rate": 0.00025,
            "effects": {"engagement": 0.0, "issue": 0.8, "satisfaction": -0.3},
            "disengaged_multiplier": 4.0,
            "seasonal": False,
            "channels": {"phone": 0.50, "email": 0.30, "social": 0.20},
        },
        "survey": {
            "rate": 0.0004,
            "effects": {"engagement": 0.2, "issue": 0.0, "satisfaction": 0.0},
            "disengaged_multiplier": 1.0,
            "seasonal": False,
            "channels": {"email": 0.7, "app": 0.3},
        },
    },
    # Survey score: round(mean + satisfaction*sigma + issue*z + disengaged + N(0, noise)), 1..10.
    "survey_score": {
        "mean": 6.8,
        "satisfaction": 1.4,
        "issue": -0.4,
        "disengaged": -2.0,
        "noise": 1.0,
    },
    # Campaigns reach every customer from signup to the end of history (alive or not), on the
    # campaign weekday at a fixed hour; opens and clicks need a living customer.
    "campaigns": {
        "rate": 0.0045,
        "weekday": 1,  # Tuesday
        "hour": 10,
        "open_logit": -0.5,
        "open_engagement": 0.9,
        "open_disengaged_multiplier": 0.2,
        "open_delay_mean_days": 0.4,
        "click_logit": -1.2,
        "click_engagement": 0.4,
        "click_delay_mean_minutes": 8.0,
    },
}


def default_params() -> dict[str, Any]:
    """Return a fresh deep copy of the default world parameters.

    Returns
    -------
    dict
        Nested, JSON-serialisable parameters (see the comments in this module).
    """
    return copy.deepcopy(_DEFAULTS)
