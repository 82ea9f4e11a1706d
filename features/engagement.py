"""Engagement and service: interactions of each kind over 30 and 90 days, and since when.

Engagement is what a customer does of their own accord (every kind but a campaign contact,
which a business sends to everyone): days since the last one, and its pace over the last 14
and 30 days against the customer's own 180-day rate.
"""

from retain.features import Entity, FeatureView, Pace, Recency, WindowAggregate, col

customer = Entity("customer", join_key="customer_id")

# interaction type -> plural used in feature names
KINDS = {
    "support_ticket": "support_tickets",
    "complaint": "complaints",
    "web_visit": "web_visits",
    "app_login": "app_logins",
    "email_open": "email_opens",
    "email_click": "email_clicks",
    "campaign_contact": "campaign_contacts",
}

counts = [
    WindowAggregate(f"{plural}_{days}d", "count", window_days=days, where=col("type") == kind)
    for kind, plural in KINDS.items()
    for days in (30, 90)
]
recencies = [
    Recency(f"days_since_{kind}", where=col("type") == kind) for kind in [*KINDS, "survey"]
]
# interactions the customer starts (all but campaign contacts)
engaged = col("type").isin([kind for kind in [*KINDS, "survey"] if kind != "campaign_contact"])
departure = [
    Recency("days_since_engagement", where=engaged),
    WindowAggregate("engagements_30d", "count", window_days=30, where=engaged),
    Pace("engagement_pace_14d", window_days=14, baseline_days=180, where=engaged),
    Pace("engagement_pace_30d", window_days=30, baseline_days=180, where=engaged),
]

engagement = FeatureView(
    name="engagement",
    entity=customer,
    source="interactions",
    description="Contacts, visits, logins, e-mail and campaign touches, and satisfaction.",
    features=[
        *counts,
        *recencies,
        WindowAggregate("survey_score_mean", "mean", "value", where=col("type") == "survey"),
        *departure,
    ],
)
