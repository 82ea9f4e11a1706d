"""Cost to serve: what serving each customer has cost, over 90 and 365 days and in total.

The cost events are the ``costs`` table's rows and the costs ``retain.yaml`` configures per
order, return, share of an order's amount and interaction type (``costs:``), one row per cost
(the derived source ``cost_events``); without either, every feature is 0.
"""

from retain.features import Entity, FeatureView, WindowAggregate

customer = Entity("customer", join_key="customer_id")

service_costs = FeatureView(
    name="service_costs",
    entity=customer,
    source="cost_events",
    description="What serving the customer cost: orders, returns, payment, contacts, logs.",
    features=[
        WindowAggregate("cost_to_serve_90d", "sum", "amount", window_days=90),
        WindowAggregate("cost_to_serve_365d", "sum", "amount", window_days=365),
        WindowAggregate("cost_to_serve_total", "sum", "amount"),
    ],
)
