"""Profit to date: what each customer has earned net of what they cost, and how soon their
acquisition cost was paid back.

The view reads the virtual source ``profit_events``: each transaction's margin (its own, else
its amount times ``margin_rate`` of ``retain.yaml``), each cost to serve (the ``cost_events``,
negative) and the acquisition cost (negative, on the customer's first day). Nothing is staged
for it: it is computed from the other sources only when a snapshot holds these features. Both
equal the ``profit_to_date`` and ``payback_months`` of the profit and loss
(``retain profitability``) at the same cutoff.
"""

from retain.features import Entity, FeatureView, PaybackMonths, WindowAggregate

customer = Entity("customer", join_key="customer_id")

profit = FeatureView(
    name="customer_profit",
    entity=customer,
    source="profit_events",
    description="Margin less cost to serve less acquisition cost to date; months to pay back.",
    features=[
        WindowAggregate("net_profit_to_date", "sum", "amount"),
        PaybackMonths("payback_months"),
    ],
)
