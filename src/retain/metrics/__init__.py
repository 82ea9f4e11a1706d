"""Measures of models and data, with no dependency on the rest of retain.

:mod:`retain.metrics.model` holds the validation metrics of churn and value models (ROC-AUC,
calibration, lift, normalized Gini, decile tables); :mod:`retain.metrics.drift` the population
stability of features between training and scoring; :mod:`retain.metrics.uplift` the Qini and
uplift curves, Qini coefficient, AUUC and incremental profit at capacity of uplift models.
"""
