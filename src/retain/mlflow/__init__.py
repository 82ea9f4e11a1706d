"""retain's use of MLflow: tracking runs, the model registry and its names, verified model files,
pyfunc wrappers and model lineages.

A leaf of the package: it depends on MLflow and retain's leaf modules only, so training,
scoring and the command line can all use it.
"""
