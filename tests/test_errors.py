"""Error messages name table, file, column, what is wrong, how many rows and samples."""

from __future__ import annotations

import numpy as np

from retain.errors import DataError, DataProblem


def test_problem_names_everything_and_caps_samples():
    problem = DataProblem(
        table="transactions",
        file="data/transactions.csv",
        column="timestamp",
        problem="unparseable timestamp",
        rows=7,
        samples=("2024-13-01", "yesterday", "x", "y", "z", "too many"),
    )
    text = str(problem)
    assert "transactions (data/transactions.csv)" in text
    assert "column 'timestamp'" in text
    assert "7 rows" in text
    assert "'yesterday'" in text
    assert "too many" not in text


def test_numpy_samples_are_shown_plainly():
    problem = DataProblem("t", "f", "amount", "infinite amount", 1, (np.float64(np.inf),))
    assert "inf" in str(problem)
    assert "np.float64" not in str(problem)


def test_data_error_lists_every_problem():
    problems = [
        DataProblem("customers", "c.csv", "customer_id", "duplicate customer_id", 2, ("A",)),
        DataProblem("transactions", "t.csv", None, "file is empty"),
    ]
    error = DataError(problems)
    assert error.exit_code == 2
    assert "2 problems" in str(error)
    assert "c.csv" in str(error) and "t.csv" in str(error)
