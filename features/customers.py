"""Customer profile: tenure since signup and static acquisition attributes."""

from retain.features import Attribute, Entity, FeatureView, Tenure

customer = Entity("customer", join_key="customer_id")

profile = FeatureView(
    name="customer_profile",
    entity=customer,
    source="customers",
    description="Who the customer is and how long they have been one.",
    features=[
        Tenure("tenure_days", column="signup_date"),
        Attribute(
            "acquisition_channel",
            categories=("paid_search", "social", "referral", "organic", "affiliate"),
        ),
        Attribute("acquisition_cost"),
        Attribute("region", categories=("north", "south", "east", "west", "central")),
    ],
)
