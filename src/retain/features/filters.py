"""Row filters for feature definitions: a tiny engine-neutral expression language.

A filter is data, not code: ``col("amount") < 0`` or ``col("type") == "complaint"`` builds a
:class:`Condition` that can be checked against a source's columns when the repository loads,
serialised deterministically for the view's version hash, and compiled to any Ibis backend.
Lambdas and engine expressions are deliberately not accepted: they can be neither validated
before a build nor hashed stably.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

__all__ = ["And", "Comparison", "Condition", "IsIn", "IsNull", "Not", "Or", "col"]

Literal = str | int | float | bool

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


class Condition:
    """Base of all filter nodes: combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Condition) -> Condition:
        return And(_as_condition(self), _as_condition(other))

    def __or__(self, other: Condition) -> Condition:
        return Or(_as_condition(self), _as_condition(other))

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError("use & | ~ to combine filter conditions, not and/or/not")

    def columns(self) -> set[str]:
        """Names of the source columns the condition reads."""
        raise NotImplementedError

    def literals(self) -> list[tuple[str, Any]]:
        """``(column, literal)`` pairs, to check literal types against column kinds."""
        raise NotImplementedError

    def canonical(self) -> list:
        """A JSON-serialisable, deterministic form (used for versions and display)."""
        raise NotImplementedError

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        """Compile the condition against an Ibis table (any backend)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return _render(self.canonical())


def _as_condition(value: object) -> Condition:
    if not isinstance(value, Condition):
        raise TypeError(f"expected a filter condition such as col('amount') > 0, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Comparison(Condition):
    """``column <op> literal`` with ``op`` one of ``== != < <= > >=``."""

    column: str
    op: str
    value: Literal

    def columns(self) -> set[str]:
        return {self.column}

    def literals(self) -> list[tuple[str, Any]]:
        return [(self.column, self.value)]

    def canonical(self) -> list:
        return [self.op, self.column, self.value]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        left, right = table[self.column], ibis.literal(self.value)
        return {
            "==": left.__eq__,
            "!=": left.__ne__,
            "<": left.__lt__,
            "<=": left.__le__,
            ">": left.__gt__,
            ">=": left.__ge__,
        }[self.op](right)


@dataclass(frozen=True, eq=False)
class IsIn(Condition):
    """``column`` takes one of ``values``."""

    column: str
    values: tuple[Literal, ...]

    def columns(self) -> set[str]:
        return {self.column}

    def literals(self) -> list[tuple[str, Any]]:
        return [(self.column, value) for value in self.values]

    def canonical(self) -> list:
        return ["isin", self.column, sorted(self.values, key=repr)]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        return table[self.column].isin(list(self.values))


@dataclass(frozen=True, eq=False)
class IsNull(Condition):
    """``column`` is missing."""

    column: str

    def columns(self) -> set[str]:
        return {self.column}

    def literals(self) -> list[tuple[str, Any]]:
        return []

    def canonical(self) -> list:
        return ["isnull", self.column]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        return table[self.column].isnull()


@dataclass(frozen=True, eq=False)
class _Junction(Condition):
    left: Condition
    right: Condition

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()

    def literals(self) -> list[tuple[str, Any]]:
        return self.left.literals() + self.right.literals()


class And(_Junction):
    """Both conditions hold."""

    def canonical(self) -> list:
        return ["and", self.left.canonical(), self.right.canonical()]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        return self.left.to_ibis(table) & self.right.to_ibis(table)


class Or(_Junction):
    """At least one condition holds."""

    def canonical(self) -> list:
        return ["or", self.left.canonical(), self.right.canonical()]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        return self.left.to_ibis(table) | self.right.to_ibis(table)


@dataclass(frozen=True, eq=False)
class Not(Condition):
    """The condition does not hold (missing values stay excluded, as in SQL)."""

    operand: Condition

    def columns(self) -> set[str]:
        return self.operand.columns()

    def literals(self) -> list[tuple[str, Any]]:
        return self.operand.literals()

    def canonical(self) -> list:
        return ["not", self.operand.canonical()]

    def to_ibis(self, table: ir.Table) -> ir.BooleanValue:
        return ~self.operand.to_ibis(table)


class col:  # noqa: N801 - reads like a function in definitions: col("amount") < 0
    """Refer to a source column inside a filter: ``col("amount") < 0``.

    Parameters
    ----------
    name : str
        Canonical column name of the view's source.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"col() takes a column name, got {name!r}")
        self.name = name

    def _compare(self, op: str, value: object) -> Comparison:
        if isinstance(value, col):
            raise TypeError("filters compare a column with a literal, not with another column")
        if not isinstance(value, str | int | float | bool):
            raise TypeError(f"filter literal must be str, int, float or bool, got {value!r}")
        return Comparison(self.name, op, value)

    def __eq__(self, value: object) -> Comparison:  # type: ignore[override]
        return self._compare("==", value)

    def __ne__(self, value: object) -> Comparison:  # type: ignore[override]
        return self._compare("!=", value)

    def __lt__(self, value: object) -> Comparison:
        return self._compare("<", value)

    def __le__(self, value: object) -> Comparison:
        return self._compare("<=", value)

    def __gt__(self, value: object) -> Comparison:
        return self._compare(">", value)

    def __ge__(self, value: object) -> Comparison:
        return self._compare(">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Literal]) -> IsIn:
        """The column takes one of ``values``."""
        values = tuple(values)
        if not values:
            raise ValueError(f"col({self.name!r}).isin() needs at least one value")
        for value in values:
            self._compare("==", value)
        return IsIn(self.name, values)

    def isnull(self) -> IsNull:
        """The column is missing."""
        return IsNull(self.name)

    def notnull(self) -> Not:
        """The column is present."""
        return Not(IsNull(self.name))


def _render(node: list) -> str:
    head = node[0]
    if head in ("and", "or"):
        return f"({_render(node[1])} {'&' if head == 'and' else '|'} {_render(node[2])})"
    if head == "not":
        return f"~{_render(node[1])}"
    if head == "isnull":
        return f"{node[1]} is null"
    if head == "isin":
        return f"{node[1]} in {node[2]!r}"
    return f"{node[1]} {head} {node[2]!r}"
