"""Engagement and service: interactions of each kind over 30 and 90 days, and since when."""

from retain.features import Entity, FeatureView, Recency, WindowAggregate, col

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

engagement = FeatureView(
    name="engagement",
    entity=customer,
    source="interactions",
    description="Contacts, visits, logins, e-mail and campaign touches, and satisfaction.",
    features=[
        *counts,
        *recencies,
        WindowAggregate("survey_score_mean", "mean", "value", where=col("type") == "survey"),
    ],
)
