"""retain: predict which customers will churn, what each is worth, and whom to call first."""

from retain.errors import ConfigError, DataError, DataProblem, RetainError

__all__ = ["ConfigError", "DataError", "DataProblem", "RetainError", "__version__"]

__version__ = "0.1.0"
