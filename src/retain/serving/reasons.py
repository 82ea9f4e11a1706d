"""Reasons in plain words: what raises this customer's churn risk, with their own numbers.

A **reason** is a feature that (1) pushes this customer's churn score up (a positive SHAP
contribution of the churn model, log-odds scale) and (2) has a value on the risky side of a
reference: the customer's own usual behaviour where the history shows it ("no purchase for 39
days; usually buys every 7 days"), else the typical customer, the median of the rows the churn
model was validated on. A positive contribution alone is not enough: trees give positive
contributions to ordinary values too, and "38 orders in the last 180 days" reads as good news.
Static traits (acquisition channel, never visited the website) are reasons only when nothing
else applies. Customers whose churn probability is low (below ``low_risk_below`` x the churn
rate the model was validated on) get no risk reason but why they are on the list ("high value:
CLV 2,340 USD"), and an at-risk customer without a clear reason gets their churn risk, so no
reason is ever empty.

The wording, units, plurals and the rule that decides when a value raises the risk live in one
table, ``reasons.yaml`` in the feature repository (the packaged ``features/reasons.yaml`` when
the repository has none; ``retain init`` copies it for editing or translation). A feature the
table does not know is worded generically ("label: value"), never with a missing value.

Everything is vectorised: rules run on whole columns, and each distinct combination of the
numbers a phrase shows is written once.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retain.errors import ConfigError
from retain.workspace import PACKAGED

__all__ = [
    "TABLE_FILE",
    "Explainer",
    "Phrase",
    "PhraseTable",
    "load_phrase_table",
    "phrase_table_for",
    "typical_from_frame",
    "typical_from_profile",
]

#: The phrase table's file name in a feature repository.
TABLE_FILE = "reasons.yaml"
#: The packaged table (English).
PACKAGED_TABLE = PACKAGED / "features" / TABLE_FILE

RULES = ("overdue", "below_usual", "above_typical", "below_typical", "more_recent",
         "trend_down", "trait", "never")  # fmt: skip
FORMATS = ("days", "count", "money", "percent", "score", "number", "text")
#: Placeholders each kind of template may use.
PHRASE_FIELDS = ("value", "usual", "typical", "days", "drop", "reference")
CONTEXT_FIELDS = ("probability", "base_rate", "clv")
CONTEXT_KEYS = ("low_risk", "value_high", "value_potential", "value", "no_reason",
                "no_reason_unknown_rate")  # fmt: skip
TOP_KEYS = ("language", "units", "reference", "low_risk_below", "context", "generic", "phrases")
ENTRY_KEYS = ("rule", "format", "unit", "text", "zero", "missing", "covers", "usual", "below",
              "usual_reference", "typical_reference")  # fmt: skip
PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}|]*)\|([^{}]*))?\}")
#: A below_usual comparison with the customer's own level fires under this share of it.
BELOW_USUAL_SHARE = 0.5


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Phrase:
    """One entry of the phrase table (see ``features/reasons.yaml`` for the fields)."""

    key: str
    rule: str
    format: str
    text: str
    zero: str | None = None
    missing: str | None = None
    covers: tuple[str, ...] = ()
    usual: str | Mapping[str, str] | None = None
    below: float = 0.8
    usual_reference: str | None = None
    typical_reference: str | None = None
    unit: tuple[str, str] | None = None

    @property
    def pattern(self) -> re.Pattern | None:
        """The regular expression of a ``{days}`` key (``None`` for a plain feature name)."""
        if "{days}" not in self.key:
            return None
        return re.compile("^" + re.escape(self.key).replace(r"\{days\}", r"(?P<days>\d+)") + "$")


@dataclass(frozen=True)
class PhraseTable:
    """The wording of reasons: phrases by feature, units, references and context sentences."""

    phrases: Mapping[str, Phrase]
    units: Mapping[str, Any]
    reference: Mapping[str, str]
    context: Mapping[str, str]
    generic: str
    low_risk_below: float
    language: str = "en"
    source: str = ""

    def lookup(self, feature: str) -> tuple[Phrase | None, dict[str, str]]:
        """The entry wording ``feature`` and the pattern's values (``{"days": "30"}``)."""
        if feature in self.phrases:
            return self.phrases[feature], {}
        for phrase in self.phrases.values():
            pattern = phrase.pattern
            if pattern is not None and (match := pattern.match(feature)):
                return phrase, match.groupdict()
        return None, {}

    def leads(self, features: Sequence[str]) -> dict[str, str]:
        """Feature -> the feature whose phrase speaks for it (itself unless covered)."""
        present = set(features)
        lead = {}
        for name in features:
            phrase, _ = self.lookup(name)
            for covered in phrase.covers if phrase is not None else ():
                if covered in present:
                    lead.setdefault(covered, name)
        return {name: lead.get(name, name) for name in features}


def _problem(path: Path | str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {message}")


def _check_template(path, where: str, template: object, fields: Sequence[str]) -> str:
    if not isinstance(template, str) or not template.strip():
        raise _problem(path, where, f"expected a non-empty text, got {template!r}")
    for match in PLACEHOLDER.finditer(template):
        if match[1] not in fields:
            raise _problem(
                path, where, f"unknown placeholder {{{match[1]}}}; use {', '.join(fields)}"
            )
    leftover = PLACEHOLDER.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise _problem(path, where, f"unbalanced braces or bad plural in {template!r}")
    return template


def _unknown(path, where: str, keys: object, known: Sequence[str]) -> None:
    unknown = sorted(set(keys) - set(known))  # type: ignore[arg-type]
    if unknown:
        raise _problem(path, where, f"unknown key(s) {unknown}; known: {', '.join(known)}")


def _entry(path, key: str, spec: object) -> Phrase:
    where = f"phrases.{key}"
    if not isinstance(spec, dict):
        raise _problem(path, where, f"expected a mapping, got {spec!r}")
    _unknown(path, where, spec, ENTRY_KEYS)
    for needed in ("rule", "format", "text"):
        if needed not in spec:
            raise _problem(path, where, f"'{needed}' is required")
    if spec["rule"] not in RULES:
        raise _problem(path, f"{where}.rule", f"{spec['rule']!r} is not one of {', '.join(RULES)}")
    if spec["format"] not in FORMATS:
        raise _problem(
            path, f"{where}.format", f"{spec['format']!r} is not one of {', '.join(FORMATS)}"
        )
    texts = {
        name: _check_template(path, f"{where}.{name}", spec[name], PHRASE_FIELDS)
        for name in ("text", "zero", "missing", "usual_reference", "typical_reference")
        if spec.get(name) is not None
    }
    covers = spec.get("covers") or []
    if not isinstance(covers, list) or not all(isinstance(name, str) for name in covers):
        raise _problem(path, f"{where}.covers", f"expected a list of feature names, got {covers!r}")
    usual = spec.get("usual")
    if usual is not None and not isinstance(usual, str):
        valid = isinstance(usual, dict) and (
            set(usual) == {"total", "over"} or set(usual) == {"longer"}
        )
        if not valid or not all(isinstance(value, str) for value in usual.values()):
            raise _problem(
                path, f"{where}.usual", f"expected a feature, {{total: F, over: T}} or "
                f"{{longer: F}}, got {usual!r}",
            )  # fmt: skip
    if spec["rule"] == "overdue" and not isinstance(usual, str):
        raise _problem(path, f"{where}.usual", "rule overdue needs the usual gap's feature")
    unit = spec.get("unit")
    if unit is not None and not (
        isinstance(unit, list) and len(unit) == 2 and all(isinstance(u, str) and u for u in unit)
    ):
        raise _problem(path, f"{where}.unit", f"expected [one, other], got {unit!r}")
    below = spec.get("below", 0.8)
    if isinstance(below, bool) or not isinstance(below, int | float):
        raise _problem(path, f"{where}.below", f"expected a number, got {below!r}")
    return Phrase(
        key=key, rule=spec["rule"], format=spec["format"], text=texts["text"],
        zero=texts.get("zero"), missing=texts.get("missing"), covers=tuple(covers),
        usual=usual, below=float(below), usual_reference=texts.get("usual_reference"),
        typical_reference=texts.get("typical_reference"),
        unit=tuple(unit) if unit is not None else None,
    )  # fmt: skip


def load_phrase_table(path: str | Path) -> PhraseTable:
    """Read and check a phrase table (``reasons.yaml``).

    Raises
    ------
    ConfigError
        Unreadable YAML, an unknown key, rule or format, or a template with an unknown
        placeholder, naming the file and the key.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the phrase table {path}: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'phrases', got {type(raw).__name__}")
    _unknown(path, "top level", raw, TOP_KEYS)
    for needed in ("phrases", "units", "reference", "context", "generic"):
        if needed not in raw:
            raise _problem(path, needed, "is required")
    units = raw["units"]
    if not isinstance(units, dict) or set(units) != {"days", "money", "percent"}:
        raise _problem(path, "units", "expected exactly days, money and percent")
    days = units["days"]
    if not (isinstance(days, list) and len(days) == 2):
        raise _problem(path, "units.days", f"expected [one, other], got {days!r}")
    for index, template in enumerate(days):
        _check_template(path, f"units.days[{index}]", template, ("n",))
    _check_template(path, "units.money", units["money"], ("n", "currency"))
    _check_template(path, "units.percent", units["percent"], ("n",))
    reference = raw["reference"]
    if not isinstance(reference, dict) or set(reference) != {"usual", "typical"}:
        raise _problem(path, "reference", "expected exactly usual and typical")
    _check_template(path, "reference.usual", reference["usual"], ("usual",))
    _check_template(path, "reference.typical", reference["typical"], ("typical",))
    context = raw["context"]
    if not isinstance(context, dict):
        raise _problem(path, "context", f"expected a mapping, got {context!r}")
    _unknown(path, "context", context, CONTEXT_KEYS)
    for key in CONTEXT_KEYS:
        if key not in context:
            raise _problem(path, f"context.{key}", "is required")
        _check_template(path, f"context.{key}", context[key], CONTEXT_FIELDS)
    _check_template(path, "generic", raw["generic"], ("label", "value"))
    low = raw.get("low_risk_below", 0.5)
    if isinstance(low, bool) or not isinstance(low, int | float) or not 0 <= low <= 1:
        raise _problem(path, "low_risk_below", f"expected a number from 0 to 1, got {low!r}")
    phrases = raw["phrases"]
    if not isinstance(phrases, dict) or not phrases:
        raise _problem(path, "phrases", "expected a mapping of feature to phrase")
    return PhraseTable(
        phrases={str(key): _entry(path, str(key), spec) for key, spec in phrases.items()},
        units=units, reference=reference, context=context, generic=raw["generic"],
        low_risk_below=float(low), language=str(raw.get("language", "en")), source=str(path),
    )  # fmt: skip


def phrase_table_for(repository: str | Path | None) -> PhraseTable:
    """The phrase table of a feature repository folder: its ``reasons.yaml``, else the
    packaged one."""
    own = Path(repository) / TABLE_FILE if repository is not None else None
    return load_phrase_table(own if own is not None and own.is_file() else PACKAGED_TABLE)


# --------------------------------------------------------------------------- references


def typical_from_profile(profile: Mapping[str, Any] | None) -> dict[str, float]:
    """The typical (median) value of each numeric feature of a drift profile.

    The profile (:func:`retain.metrics.drift.reference_profile`) keeps decile edges and the
    share of rows in each bin; the median is interpolated in the bin where the cumulative
    share of known values reaches one half, and floored when every edge is a whole number (a
    count whose median bin is ``[0, 1)`` has the median 0).
    """
    typical: dict[str, float] = {}
    for name, spec in ((profile or {}).get("features") or {}).items():
        if not isinstance(spec, Mapping) or spec.get("kind") != "numeric":
            continue
        edges = np.asarray(spec.get("edges") or [], dtype=float)
        shares = np.asarray(spec.get("shares") or [], dtype=float)[: len(edges) + 1]
        if len(edges) == 0 or len(shares) != len(edges) + 1 or shares.sum() <= 0:
            continue
        shares = shares / shares.sum()
        cumulative = np.cumsum(shares)
        k = int(np.searchsorted(cumulative, 0.5 - 1e-12))
        if k == 0:
            median = edges[0]
        elif k >= len(edges):
            median = edges[-1]
        else:
            before = cumulative[k - 1]
            median = edges[k - 1] + (0.5 - before) / shares[k] * (edges[k] - edges[k - 1])
            if np.all(edges == np.floor(edges)):
                median = math.floor(median)
        typical[str(name)] = float(median)
    return typical


def typical_from_frame(frame: pd.DataFrame) -> dict[str, float]:
    """The median of each numeric column's known values (when no drift profile exists)."""
    typical = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=float, na_value=np.nan)
            values = values[np.isfinite(values)]
            if values.size:
                typical[str(name)] = float(np.median(values))
    return typical


# --------------------------------------------------------------------------- numbers


def _shown(values: np.ndarray, fmt: str) -> np.ndarray:
    """The numbers as a phrase shows them (percent: as a percentage)."""
    with np.errstate(invalid="ignore"):
        if fmt in ("days", "count"):
            return np.rint(values)
        if fmt == "money":
            return np.where(np.abs(values) >= 100, np.rint(values), np.round(values, 2))
        if fmt == "percent":
            # a share that rounds to 0% or 100% without being it is shown as under 1% / over 99%
            # (the halves stand for those words): "happens only 0% of the time" reads as never
            shown = np.rint(values * 100)
            shown = np.where((shown == 0) & (values > 0), 0.5, shown)
            return np.where((shown == 100) & (values < 1), 99.5, shown)
        if fmt == "score":
            return np.round(values, 1)
        return np.round(values, 2)


def _integer(number: float) -> str:
    return f"{number:,.0f}"


def _percent(number: float, table: PhraseTable) -> str:
    """A percentage :func:`_shown` gave, in words (its halves: under 1%, over 99%)."""
    if number == 0.5:
        return "under " + table.units["percent"].format(n="1")
    if number == 99.5:
        return "over " + table.units["percent"].format(n="99")
    return table.units["percent"].format(n=_integer(number))


def _write(
    number: float, fmt: str, table: PhraseTable, currency: str, unit: Sequence[str] | None = None
) -> str:
    """One shown number in words, with its unit."""
    if fmt == "days":
        return table.units["days"][0 if number == 1 else 1].format(n=_integer(number))
    if fmt == "count":
        noun = f" {unit[0] if number == 1 else unit[1]}" if unit else ""
        return _integer(number) + noun
    if fmt == "money":
        text = _integer(number) if abs(number) >= 100 else f"{number:,.2f}"
        return table.units["money"].format(n=text, currency=currency).strip()
    if fmt == "percent":
        return _percent(number, table)
    if fmt == "score":
        return f"{number:,.1f}"
    return f"{number:,.2f}".rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=1024)
def _parts(template: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """A template cut into (text or placeholder name, one, other) parts, once per template."""
    parts, start = [], 0
    for match in PLACEHOLDER.finditer(template):
        if match.start() > start:
            parts.append((template[start : match.start()], None, None))
        name, one, other = match.groups()
        parts.append(("{" + name, one, other))
        start = match.end()
    if start < len(template):
        parts.append((template[start:], None, None))
    return tuple(parts)


def _fill(template: str, words: Mapping[str, str], numbers: Mapping[str, float]) -> str:
    """``template`` with its placeholders replaced; ``{x:one|other}`` by the number ``x`` shows."""
    pieces = []
    for part, one, other in _parts(template):
        if not part.startswith("{"):
            pieces.append(part)
        elif one is None:
            pieces.append(words.get(part[1:], ""))
        else:
            pieces.append(one if numbers.get(part[1:]) == 1 else other)
    text = "".join(pieces).strip()
    if text.endswith((";", ",")):  # a reference that could not be worded
        text = text[:-1].rstrip()
    return text


def _floats(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
        return np.full(len(column), np.nan)
    return column.to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- assessment


@dataclass
class _Assessment:
    """One feature's rule on some rows: whether it is a risk reason or a trait, and what the
    phrase shows."""

    risk: np.ndarray
    trait: np.ndarray
    value: np.ndarray  # shown numbers (NaN: unknown) or, for text, the values as objects
    usual: np.ndarray  # shown usual level, NaN where none
    variant: np.ndarray  # 0 text, 1 zero, 2 missing


# --------------------------------------------------------------------------- the explainer


@dataclass(frozen=True)
class Explainer:
    """Turns churn contributions into reasons (see the module docstring).

    Parameters
    ----------
    table : PhraseTable
        The wording.
    typical : mapping of str to float, default={}
        The typical customer's value of each feature (:func:`typical_from_profile`).
    base_rate : float or None, default=None
        The churn rate the model was validated on; ``None`` disables "low risk".
    currency : str, default=""
        Currency code written after money.
    count : int, default=3
        Reasons per customer.
    """

    table: PhraseTable
    typical: Mapping[str, float] = field(default_factory=dict)
    base_rate: float | None = None
    currency: str = ""
    count: int = 3

    @property
    def low_risk_threshold(self) -> float:
        """Churn probabilities below this get context, not risk reasons."""
        if self.base_rate is None or not math.isfinite(self.base_rate):
            return 0.0
        return self.table.low_risk_below * self.base_rate

    # -- per feature

    def assess(self, feature: str, features: pd.DataFrame) -> _Assessment:
        """Apply the rule of ``feature``'s phrase to every row of ``features``."""
        rows = len(features)
        none = np.zeros(rows, dtype=bool)
        phrase, params = self.table.lookup(feature)
        column = features[feature]
        if phrase is None or phrase.format == "text":
            values = column.astype(object).to_numpy()
            known = column.notna().to_numpy()
            text_like = isinstance(column.dtype, pd.CategoricalDtype) or not (
                pd.api.types.is_numeric_dtype(column)
            )
            if phrase is None and not text_like:  # generic: any known number
                shown = _shown(_floats(column), "number")
                known = np.isfinite(shown)
                variant = np.where(known, 0, 2)
                return _Assessment(known, none, shown, np.full(rows, np.nan), variant)
            trait = known if phrase is None or phrase.rule == "trait" else none
            variant = np.where(known, 0, 2)
            return _Assessment(none, trait, values, np.full(rows, np.nan), variant)
        raw = _floats(column)
        shown = _shown(raw, phrase.format)
        known = np.isfinite(shown)
        usual_raw = self._usual(phrase, params, features, raw)
        usual = _shown(usual_raw, phrase.format)
        typical_raw = self.typical.get(feature)
        typical = (
            float(_shown(np.array([typical_raw]), phrase.format)[0])
            if typical_raw is not None
            else np.nan
        )
        has_typical = math.isfinite(typical)
        with np.errstate(invalid="ignore"):
            has_usual = np.isfinite(usual) & (usual > 0)
            if phrase.rule in ("never", "trait"):
                risk = none
            elif phrase.rule == "overdue":
                risk = known & np.where(has_usual, shown > usual, has_typical & (shown > typical))
            elif phrase.rule == "below_usual":
                has_usual &= usual >= (1 if phrase.format == "count" else 0)
                below = raw < BELOW_USUAL_SHARE * usual_raw
                risk = known & np.where(has_usual, below, has_typical & (shown < typical))
            elif phrase.rule == "above_typical":
                risk = known & has_typical & (shown > typical)
            elif phrase.rule in ("below_typical", "more_recent"):
                risk = known & has_typical & (shown < typical)
            else:  # trend_down
                risk = known & (raw < phrase.below)
        if phrase.rule not in ("overdue", "below_usual"):
            usual = np.full(rows, np.nan)
        else:
            usual = np.where(has_usual, usual, np.nan)
        trait = known if phrase.rule == "trait" else none
        if phrase.missing is not None:
            trait = trait | ~known
        variant = np.where(~known, 2, np.where((shown == 0) & (phrase.zero is not None), 1, 0))
        return _Assessment(risk, trait, shown, usual, variant)

    def _needs(self, feature: str, columns) -> list[str]:
        """The columns the phrase of ``feature`` reads (the feature and its usual level's)."""
        phrase, _ = self.table.lookup(feature)
        spec = phrase.usual if phrase is not None else None
        sources = [spec] if isinstance(spec, str) else list((spec or {}).values())
        return [feature] + [name for name in sources if name in columns and name != feature]

    def _usual(self, phrase: Phrase, params, features: pd.DataFrame, value: np.ndarray):
        """The customer's own usual level (NaN where the history cannot show it)."""
        rows = len(features)
        nothing = np.full(rows, np.nan)
        spec = phrase.usual
        if spec is None:
            return nothing
        if isinstance(spec, str):
            return _floats(features[spec]) if spec in features.columns else nothing
        days = float(params.get("days", "nan"))
        if "longer" in spec:
            longer = spec["longer"]
            pattern = phrase.pattern
            match = pattern.match(longer) if pattern is not None else None
            longer_days = float(match["days"]) if match else math.nan
            if longer not in features.columns or not longer_days > days:
                return nothing
            return (_floats(features[longer]) - value) * days / (longer_days - days)
        total, over = spec["total"], spec["over"]
        if total not in features.columns or over not in features.columns or not days > 0:
            return nothing
        history = _floats(features[over])
        with np.errstate(invalid="ignore", divide="ignore"):
            # the window needs history before it: at least as long again
            return np.where(history >= 2 * days, _floats(features[total]) * days / history, np.nan)

    # -- wording

    def _words(self, phrase: Phrase, params: Mapping[str, str]):
        """A function writing one phrase from its shown numbers."""
        table, fmt, currency, unit = self.table, phrase.format, self.currency, phrase.unit

        def write(feature_typical, value, usual, variant) -> str:
            if variant == 2 and phrase.missing is None:
                return ""  # an unknown value is no reason (explain never picks it)
            template = (phrase.text, phrase.zero, phrase.missing)[variant] or phrase.text
            numbers: dict[str, float] = {}
            words: dict[str, str] = {}
            if "days" in params:
                numbers["days"], words["days"] = float(params["days"]), params["days"]
            if fmt == "text":
                words["value"] = str(value)
            elif variant != 2:
                numbers["value"], words["value"] = value, _write(value, fmt, table, currency, unit)
            if phrase.rule == "trend_down" and variant != 2:
                drop = float(100 - value)
                numbers["drop"], words["drop"] = (
                    drop,
                    _percent(drop, table),
                )
            if math.isfinite(usual):
                numbers["usual"], words["usual"] = usual, _write(usual, fmt, table, currency, unit)
                reference = phrase.usual_reference or table.reference["usual"]
                words["reference"] = _fill(reference, words, numbers)
            elif feature_typical is not None and math.isfinite(feature_typical):
                numbers["typical"] = feature_typical
                words["typical"] = _write(feature_typical, fmt, table, currency, unit)
                reference = phrase.typical_reference or table.reference["typical"]
                words["reference"] = _fill(reference, words, numbers)
            return _fill(template, words, numbers)

        return write

    def phrases(self, feature: str, features: pd.DataFrame) -> np.ndarray:
        """The phrase of ``feature`` for every row of ``features`` (object array), whether or
        not it is a reason there; each distinct combination of shown numbers is written once."""
        rows = len(features)
        if rows == 0:
            return np.empty(0, dtype=object)
        phrase, params = self.table.lookup(feature)
        assessment = self.assess(feature, features)
        if phrase is None:
            label = feature.replace("_", " ")
            values, known = assessment.value, assessment.variant != 2
            if values.dtype == object:
                texts = [str(v) if ok else "" for v, ok in zip(values, known, strict=True)]
            else:
                texts = [
                    _write(v, "number", self.table, self.currency) if ok else ""
                    for v, ok in zip(values, known, strict=True)
                ]
            unique, codes = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            words = [
                _fill(self.table.generic, {"label": label, "value": text}, {}) if text else ""
                for text in unique
            ]
            return np.asarray(words, dtype=object)[codes]
        typical = self.typical.get(feature)
        shown_typical = (
            float(_shown(np.array([typical]), phrase.format)[0]) if typical is not None else None
        )
        write = self._words(phrase, params)
        keys = [assessment.variant.astype(np.int64)]
        if phrase.format == "text":
            value_codes, value_uniques = pd.factorize(assessment.value, use_na_sentinel=False)
            keys.append(value_codes.astype(np.int64))
        else:
            keys.append(_bits(assessment.value))
        keys.append(_bits(assessment.usual))
        codes = _combined(keys)
        _, first = np.unique(codes, return_index=True)
        texts = [
            write(shown_typical, assessment.value[i], float(assessment.usual[i]),
                  int(assessment.variant[i]))
            for i in first
        ]  # fmt: skip
        return np.asarray(texts, dtype=object)[codes]

    # -- the reasons of a batch

    def explain(
        self,
        contributions: pd.DataFrame,
        features: pd.DataFrame,
        probability: np.ndarray,
        clv: np.ndarray | None = None,
        value_tier: np.ndarray | None = None,
    ) -> tuple[pd.DataFrame, pd.Series]:
        """``reason_1 .. reason_<count>`` and the feature behind each first reason.

        Parameters
        ----------
        contributions : DataFrame
            SHAP contributions towards churn (log-odds), one column per feature plus ``bias``.
        features : DataFrame
            The customers' feature values, rows as in ``contributions``.
        probability : array of float
            Churn probability (low-risk customers get context instead of risk reasons).
        clv : array of float, optional
            CLV, quoted for low-risk customers.
        value_tier : array of str, optional
            Value tier of each customer (``high`` and ``potential`` say "high value").

        Returns
        -------
        reasons : DataFrame
            One column per reason, indexed like ``features``; the first is never empty.
        top : Series
            The feature behind the first reason (the playbook's ``top_reason``), ``""`` where
            the first reason is context (low risk, no clear reason).
        """
        rows, count = len(features), self.count
        shap = contributions.drop(columns=["bias"], errors="ignore")
        shap = shap[[name for name in shap.columns if name in features.columns]]
        leads = self.table.leads(list(shap.columns))
        names = list(dict.fromkeys(leads[name] for name in shap.columns))
        values = shap.to_numpy(dtype=np.float64)
        sums = np.zeros((rows, len(names)), order="F")  # filled and read column by column
        position = {name: index for index, name in enumerate(names)}
        for column, name in enumerate(shap.columns):
            sums[:, position[leads[name]]] += values[:, column]
        risk = np.zeros((rows, len(names)), dtype=bool, order="F")
        trait = np.zeros_like(risk)
        for index, name in enumerate(names):
            assessment = self.assess(name, features)
            risk[:, index], trait[:, index] = assessment.risk, assessment.trait
        positive = sums > 0  # a missing contribution pushes nowhere
        risk &= positive
        trait &= positive
        low = np.asarray(probability, dtype=float) < self.low_risk_threshold
        risk[low] = False
        trait &= ~risk.any(axis=1, keepdims=True)
        trait[low] = False
        score = np.where(risk | trait, sums, -np.inf)  # eligible ones are positive numbers
        order, picked = _strongest(score, count)
        chosen = np.asarray(names, dtype=object)[order] if names else np.empty((rows, 0), object)
        chosen = np.where(picked, chosen, "")
        reasons = np.full((rows, count), "", dtype=object)
        for k in range(chosen.shape[1]):
            codes, named = pd.factorize(chosen[:, k])
            for code, feature in enumerate(named):
                if feature:
                    where = np.flatnonzero(codes == code)
                    needed = features[self._needs(feature, features.columns)]
                    reasons[where, k] = self.phrases(feature, needed.iloc[where])
        self._context(reasons, low, probability, clv, value_tier)
        frame = pd.DataFrame(
            {f"reason_{k + 1}": reasons[:, k] for k in range(count)}, index=features.index
        )
        top = chosen[:, 0] if chosen.shape[1] else np.full(rows, "", dtype=object)
        return frame, pd.Series(top, index=features.index, dtype=object)

    def _context(self, reasons, low, probability, clv, value_tier) -> None:
        """Low-risk customers: value and low risk; others without a reason: their risk."""
        if reasons.shape[1] == 0:
            return
        rows = len(reasons)
        context, table = self.table.context, self.table
        probability = np.asarray(probability, dtype=float)
        percent = _shown(probability, "percent")
        base = self.base_rate
        base_words = (
            _percent(_shown(np.array([base]), "percent")[0], table)
            if base is not None and math.isfinite(base)
            else None
        )
        clv_values = _shown(np.asarray(clv, dtype=float), "money") if clv is not None else None
        tiers = (
            np.asarray(value_tier, dtype=object) if value_tier is not None
            else np.full(rows, "", dtype=object)
        )  # fmt: skip

        def risk_words(p: float) -> str:
            return _percent(p, table) if math.isfinite(p) else "?"

        cache: dict[tuple, list[str]] = {}

        def say(key: str, p: float, value: float) -> str:
            # the sentence around the CLV is written once per key and probability
            if (key, p) not in cache:
                words = {"probability": risk_words(p), "clv": "\x00"}
                if base_words is not None:
                    words["base_rate"] = base_words
                cache[(key, p)] = _fill(context[key], words, {}).split("\x00")
            parts = cache[(key, p)]
            if len(parts) == 1:
                return parts[0]
            clv_words = _write(value, "money", table, self.currency) if math.isfinite(value) else ""
            return clv_words.join(parts)

        empty = reasons[:, 0] == ""
        contextual = np.flatnonzero(low | empty)
        if not contextual.size:
            return
        p = percent[contextual]
        value = np.full(len(contextual), np.nan)
        if clv_values is not None:
            value = clv_values[contextual]
        is_low, has_value = low[contextual], np.isfinite(value)
        tier = tiers[contextual]
        value_key = np.where(
            tier == "high", "value_high", np.where(tier == "potential", "value_potential", "value")
        )
        risk_key = "no_reason" if base_words is not None else "no_reason_unknown_rate"
        # a low-risk customer: the value (why listed), then the low risk; else the risk alone
        first = np.where(is_low, np.where(has_value, value_key, "low_risk"), risk_key)
        second = np.where(is_low & has_value, "low_risk", "")

        def written(keys: np.ndarray) -> np.ndarray:
            quoted = np.where(np.char.startswith(keys.astype(str), "value"), value, np.nan)
            codes = _combined([pd.factorize(keys)[0].astype(np.int64), _bits(p), _bits(quoted)])
            _, once = np.unique(codes, return_index=True)
            texts = [say(keys[i], float(p[i]), float(quoted[i])) if keys[i] else "" for i in once]
            return np.asarray(texts, dtype=object)[codes]

        reasons[contextual[is_low], :] = ""
        reasons[contextual, 0] = written(first)
        if reasons.shape[1] > 1:
            reasons[contextual[is_low], 1] = written(second)[is_low]


def _bits(values: np.ndarray) -> np.ndarray:
    """Codes telling numbers apart exactly (NaN one code)."""
    values = np.asarray(values, dtype=np.float64)
    clean = np.where(np.isnan(values), np.nan, values + 0.0)  # -0.0 shows as 0
    codes, _ = pd.factorize(clean, use_na_sentinel=False)
    return codes.astype(np.int64)


def _combined(keys: list[np.ndarray]) -> np.ndarray:
    """One code per distinct combination of the key columns."""
    codes = np.zeros(len(keys[0]), dtype=np.int64)
    for key in keys:
        codes, _ = pd.factorize(codes * (int(key.max(initial=0)) + 1) + key)
        codes = codes.astype(np.int64)
    return codes


def _strongest(values: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions of the ``count`` largest values of each row, largest first, ties in
    column order (a stable argsort of ``-values``, without sorting every column), and whether
    each is above ``-inf`` (a value, not a place left empty)."""
    count = min(count, values.shape[1])
    left = np.array(values, order="C")
    order = np.empty((len(values), count), dtype=np.intp)
    found = np.zeros((len(values), count), dtype=bool)
    for k in range(count):  # argmax takes the first of equal values, as a stable sort does
        order[:, k] = np.argmax(left, axis=1)
        found[:, k] = np.take_along_axis(left, order[:, k : k + 1], axis=1)[:, 0] > -np.inf
        np.put_along_axis(left, order[:, k : k + 1], -np.inf, axis=1)
    return order, found
