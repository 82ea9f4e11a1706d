"""What ``retain score`` writes: the retention-priority list and its summary.

``serving/output/<as_of>/`` (or ``--out``) holds

- ``retention_priority.parquet`` and ``retention_priority.csv``: one row per active customer,
  columns :data:`LIST_COLUMNS` in that order, sorted by ``rank`` (1 = call first); the CSV
  rounds money to cents and probabilities to four decimals, the Parquet keeps full precision;
- ``contacts.csv`` (and ``contacts.xlsx`` when openpyxl is installed): only the selected
  customers of the treatment group, in contact order, worded for people
  (:mod:`retain.serving.sheets`); the control group is not to be contacted;
- ``campaign_log.csv``: the selected customers (both groups) as rows of the data contract's
  ``campaigns`` log, to add to the data folder once the contacts are made
  (:mod:`retain.serving.experiment`; not written with pseudonymized ids);
- ``summary.json``: :data:`SUMMARY_KEYS` (see below);
- ``report.html`` when ``retain report`` or ``retain quickstart`` wrote one there (re-scoring
  with ``retain score`` regenerates it from the new list).
- ``.retain-output.json``: the marker that makes the folder one ``--out`` may replace (its kind,
  ``list``, and its files; see :mod:`retain.atomic`).

The report (``retain report``) and the backtest (``retain backtest``) read only these files.
"""

from __future__ import annotations

__all__ = ["GROUPS", "LIST_COLUMNS", "LIST_FILE", "LIST_KIND", "LIST_LEGACY_FILES",
           "REASON_COLUMNS", "REPORT_FILE", "SUMMARY_FILE", "SUMMARY_KEYS"]  # fmt: skip

LIST_FILE = "retention_priority.parquet"
CSV_FILE = "retention_priority.csv"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
#: What a list folder is (its marker says so): ``--out`` replaces only a folder of this kind.
LIST_KIND = "list"
#: Files of a list folder written before folders carried a marker (taken as retain's).
LIST_LEGACY_FILES = (LIST_FILE, CSV_FILE, SUMMARY_FILE, REPORT_FILE)
#: Values of the list's ``group`` column for the selected customers.
GROUPS = ("treatment", "control")

REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")

#: Columns of the list, in order, with their meaning.
LIST_COLUMNS: dict[str, str] = {
    "rank": "1 = contact first: the selected customers by expected_net_gain, then the others "
    "with a positive gain by gain, then the rest by value_at_risk; ties by value_at_risk, "
    "then customer_id (int)",
    "customer_id": "customer id (a keyed HMAC with --pseudonymize) (str)",
    "as_of": "scoring cutoff (date)",
    "selected": "chosen for contact within the capacity and/or budget (bool)",
    "group": "treatment (contact) or control (selected but held out, not to be contacted: "
    "measures what the contacts add); empty when not selected (str)",
    "churn_probability": "calibrated P(no purchase in the churn horizon) (float, 0-1)",
    "clv": "expected discounted net margin over the CLV horizon (float)",
    "clv_if_retained": "clv given the customer stays: clv / P(alive) of the CLV model's BTYD "
    "side (float)",
    "value_at_risk": "churn_probability x clv_if_retained (float)",
    "recommended_action": "the eligible playbook action with the highest expected_net_gain (str)",
    "action_cost": "cost of the action per customer (float)",
    "save_rate": "the playbook's prior share of the value at risk the action saves (float, 0-1)",
    "expected_incremental_margin": "margin the action is expected to add: the uplift "
    "model's, else save_rate x value_at_risk (float)",
    "expected_churn_effect": "change of the churn probability the action is expected to "
    "cause, negative when it retains: the uplift model's, else -save_rate x "
    "churn_probability (float)",
    "expected_net_gain": "expected_incremental_margin - action_cost (float)",
    "sleeping_dog": "every eligible action is expected to lose margin: do not contact (bool)",
    "segment": "named RFM segment (str)",
    "value_tier": "high / medium / low / potential (str)",
    "loyalty_class": "loyal / potential / marginal / churned (str)",
    "lifecycle_stage": "new / growing / mature / declining / churned (str)",
    "cluster": "behavioural cluster number (int)",
    "reason_1": "strongest reason the churn risk is raised, in plain words with the customer's "
    "numbers; for a low-risk customer why they are on the list (never empty)",
    "reason_2": "second reason (str, may be empty)",
    "reason_3": "third reason (str, may be empty)",
    "recency_days": "days since the last purchase (float)",
    "frequency": "purchases to date (float)",
    "monetary_total": "net spend to date (float)",
    "influence_value": "profit to date of the customers this customer referred "
    "(customers.referred_by): margin - cost to serve - acquisition cost, as retain "
    "profitability counts it (its influence_realised: realised only, no predicted part); 0 "
    "without referrals (float)",
}

#: Top-level keys of ``summary.json``.
SUMMARY_KEYS: dict[str, str] = {
    "as_of": "scoring cutoff, YYYY-MM-DD",
    "generated_at": "UTC time the list was written (ISO 8601)",
    "counts": "{customers_active, scored, selected, control, contacted, by_action: "
    "{action: selected}}",
    "totals": "{value_at_risk, clv, expected_net_gain, selected_value_at_risk, "
    "selected_expected_net_gain, selected_cost, contacted_cost}",
    "currency": "currency of every amount (retain.yaml)",
    "selection": "{capacity, budget, selected, cost, expected_net_gain, candidates (customers "
    "with a positive gain), method, lp_bound, optimality_gap, optimality_gap_share, optimal, "
    "binding, capacity_used_share, budget_used_share, notes: [sentence], no_positive_gain "
    "(only when no gain is positive: cheapest_action, cost, save_rate, "
    "break_even_value_at_risk, value_at_risk_percentiles, message)}",
    "gains": "{source: 'playbook prior' or 'uplift model retain-uplift vN', measured, "
    "actions: {action: source}, note, margin_basis: {action: {days, discount_rate_monthly}}}: "
    "whether the expected gains are assumptions, and the window and discounting of each "
    "action's expected_incremental_margin (retain backtest measures the realised margin on it)",
    "clv_if_retained": "{method: 'clv / P(alive)' or 'clv', alive_floor}",
    "experiment": "{campaign_id, control_share, seed, treatment, control, by_action: "
    "{action: {treatment, control}}, campaign_log (file, null when pseudonymized), note}",
    "models": "{churn|clv|segments: {name, version, run_id, metrics: {name: value}}}",
    "model_card": "{churn: {metrics, calibration: [{bin, rows, mean_predicted, observed_rate}], "
    "gain: {share_contacted: [...], share_captured: [...]}}, clv: {metrics}}",
    "feature_views": "{view: version}",
    "data_fingerprint": "fingerprint of the scored sources",
    "drift": "{threshold, max_psi, drifted: [feature], psi: {feature: value}, strict: bool}",
    "horizons": "{churn_days, clv_days}",
    "pseudonymized": "whether customer ids are keyed HMACs",
    "reasons_method": "treeshap (exact) or saabas (approximate, for very large lists)",
    "reasons": "{table, language, low_risk_below (churn probability), validated_churn_rate, "
    "typical_from}",
    "report": "what became of a report.html in the output folder: regenerated, kept or null",
}
