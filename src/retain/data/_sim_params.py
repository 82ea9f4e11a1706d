"""Default parameters of the simulated retail world (a plain, JSON-serialisable dict).

Every number the simulator draws from lives here, so that ``World.params`` and
``simulation.json`` describe the world completely. Rates are per day unless named otherwise.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "CATEGORIES",
    "INTERACTION_TYPES",
    "cost_params",
    "default_params",
    "referral_params",
    "retention_params",
]

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


# Retention campaigns (``simulate_world(campaigns=...)``): the playbook's actions, what each
# costs, the channel of its contact and its effect on the latent chain at the midnight after
# the contact. ``rescue`` is the probability that a disengaging customer returns to engaged,
# ``protect`` the share by which an engaged customer's hazard kappa falls for ``days`` days;
# both are ``max * sigmoid(logit + sum of effect * trait)``. ``intrusiveness`` scales the
# probability ``sigmoid(push.logit + push.contact_aversion * aversion)`` that a contact pushes
# an engaged customer into disengaging ("sleeping dogs"). Dead customers never respond.
_RETENTION: dict[str, Any] = {
    "traits": {
        # price_sensitivity = r * z(log spend_scale) + noise: price-sensitive customers place
        # cheaper orders and click promotional emails more.
        "price_sensitivity_spend_correlation": 0.5,
        # contact_aversion = r * engagement + noise: averse customers open fewer emails.
        "contact_aversion_engagement_correlation": -0.3,
    },
    "responses": {"open_contact_aversion": -0.8, "click_price_sensitivity": 0.7},
    "push": {"logit": -5.0, "contact_aversion": 2.5},
    # What a business that runs a retention team logs: every web session and app login (the
    # base world's rates are those of a sparse log, about one visit in four months) and its
    # service contacts. In a world with campaigns, ``rate_factor`` multiplies the rate of each
    # kind of ``interactions`` and ``disengaged_multiplier`` replaces its own, so a disengaging
    # customer's fall in activity shows within weeks, as it does in a real clickstream (a
    # customer drifting away stops opening the app). The base world stays as it was.
    "interactions": {
        "web_visit": {"rate_factor": 12.0, "disengaged_multiplier": 0.05},
        "app_login": {"rate_factor": 12.0, "disengaged_multiplier": 0.05},
        "support_ticket": {"rate_factor": 3.0},
        "complaint": {"rate_factor": 3.0},
    },
    "contact_hours": [9, 17],
    "actions": {
        "service_recovery": {
            "cost": 12.0,
            "channel": "phone",
            "intrusiveness": 0.5,
            "rescue": {"max": 0.8, "logit": -1.2, "effects": {"issue": 2.0, "fading": -0.8}},
            "protect": {"max": 0.7, "logit": -1.0, "effects": {"issue": 1.5}, "days": 180},
        },
        "personal_call": {
            "cost": 15.0,
            "channel": "phone",
            "intrusiveness": 1.0,
            "rescue": {
                "max": 0.5,
                "logit": -0.5,
                "effects": {"engagement": 0.8, "satisfaction": 0.6, "fading": -0.8},
            },
            "protect": {
                "max": 0.5,
                "logit": -0.5,
                "effects": {"engagement": 0.6, "satisfaction": 0.4},
                "days": 120,
            },
        },
        "win_back_offer": {
            "cost": 6.0,
            "channel": "email",
            "intrusiveness": 0.4,
            "rescue": {
                "max": 0.7,
                "logit": -1.2,
                "effects": {"price_sensitivity": 2.0, "fading": -0.8},
            },
            "protect": {
                "max": 0.6,
                "logit": -1.0,
                "effects": {"price_sensitivity": 1.6},
                "days": 90,
            },
        },
        "loyalty_reward": {
            "cost": 3.0,
            "channel": "app",
            "intrusiveness": 0.25,
            "rescue": {
                "max": 0.35,
                "logit": -1.0,
                "effects": {"price_sensitivity": 1.0, "engagement": 0.6, "fading": -0.8},
            },
            "protect": {
                "max": 0.6,
                "logit": -0.5,
                "effects": {"price_sensitivity": 1.0, "engagement": 0.8},
                "days": 180,
            },
        },
        "reminder_email": {
            "cost": 0.3,
            "channel": "email",
            "intrusiveness": 0.6,
            "rescue": {"max": 0.15, "logit": -0.5, "effects": {"engagement": 0.8, "fading": -0.8}},
            "protect": {"max": 0.2, "logit": -1.0, "effects": {"engagement": 0.5}, "days": 30},
        },
    },
}

# Cost to serve (``simulate_world(costs=True)``): what each order, return and contact costs.
_COSTS: dict[str, Any] = {
    # Per order: pick, pack and ship by order channel, per extra item, and the payment fee.
    "fulfilment": {
        "per_order": {"web": 4.5, "app": 4.0, "store": 1.2},
        "per_extra_item": 0.6,
        "payment_share": 0.018,
    },
    "return_processing": {"per_return": 5.0, "share_of_amount": 0.08},
    # Handling per contact by channel, times a lognormal factor of mean one.
    "support_ticket": {"per_contact": {"phone": 7.0, "chat": 3.5, "email": 3.0}, "sigma": 0.35},
    "complaint": {"per_contact": {"phone": 14.0, "email": 9.0, "social": 11.0}, "sigma": 0.35},
    # Promotional contacts; retention contacts cost their action's cost.
    "campaign_contact": {"per_contact": 0.02},
}

# Referrals (``simulate_world(referrals=True)``): customers of the referral channel name a
# referrer, an engaged customer who joined before them, drawn with weight
# exp(weight * referral_propensity); the propensity rises with engagement and satisfaction.
_REFERRALS: dict[str, Any] = {
    "propensity": {"engagement": 0.4, "satisfaction": 0.3},
    "weight": 1.2,
    "max_rounds": 60,
}


def retention_params() -> dict[str, Any]:
    """Fresh copy of the retention-campaign parameters (effects, costs, channels)."""
    return copy.deepcopy(_RETENTION)


def cost_params() -> dict[str, Any]:
    """Fresh copy of the cost-to-serve parameters."""
    return copy.deepcopy(_COSTS)


def referral_params() -> dict[str, Any]:
    """Fresh copy of the referral parameters."""
    return copy.deepcopy(_REFERRALS)
