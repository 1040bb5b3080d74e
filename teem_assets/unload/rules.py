"""The catalogue's rules over an unload's rows, evaluated on each decoded block as the part is converted (no
second scan of the data): per rule, how many rows broke it and a few of them as examples, personal data masked.
Uniqueness needs every part's keys: each part hands its keys on, and the unload counts the repeated ones."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from teem_assets.catalogue import PERSONAL_MASK, Rule, RuleKind, Table

EXAMPLES = 3


@dataclass(frozen=True)
class RuleSet:
    """A table's rules as one unload is checked against them."""

    rules: tuple[Rule, ...]
    key: str  # the primary key column, which names each example row
    personal: frozenset[str]
    latest: dt.datetime  # the end of the batch date (a snapshot: of today), naive UTC

    @classmethod
    def of(cls, table: Table, batch: str, today: dt.date) -> RuleSet:
        day = today if batch == "snapshot" else dt.date.fromisoformat(batch)
        latest = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
        return cls(table.rules, table.primary_key[0], frozenset(table.personal_columns), latest)


def _broken(rows: pa.Table, rule: Rule, latest: dt.datetime) -> pa.Array:
    values = rows.column(rule.column)
    if rule.kind is RuleKind.NOT_NULL:
        return pc.is_null(values)
    if rule.kind is RuleKind.ACCEPTED:
        accepted = pc.is_in(pc.utf8_lower(values), value_set=pa.array([v.lower() for v in rule.values]))
        return pc.invert(accepted)
    if rule.kind is RuleKind.PATTERN:
        return pc.invert(pc.match_substring_regex(values, rule.pattern))
    if rule.kind is RuleKind.NOT_AFTER_BATCH:
        limit = pa.scalar(latest + dt.timedelta(days=rule.days)).cast(values.type)
        return pc.greater(values, limit)
    raise ValueError(f"{rule.name}: not evaluated row by row")


@dataclass
class RuleTally:
    """What one part (or, merged, one unload) broke: rows per rule, the first examples, the keys seen."""

    broken: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    keys: list[np.ndarray] = field(default_factory=list)

    def add(self, rows: pa.Table, rules: RuleSet) -> None:
        for rule in rules.rules:
            if rule.kind is RuleKind.UNIQUE:
                self.keys.append(rows.column(rule.column).drop_null().to_numpy())
                continue
            flags = pc.fill_null(_broken(rows, rule, rules.latest), False).to_numpy(zero_copy_only=False)
            found = np.flatnonzero(flags)
            if not len(found):
                continue
            self.broken[rule.name] = self.broken.get(rule.name, 0) + len(found)
            examples = self.examples.setdefault(rule.name, [])
            for index in found[: EXAMPLES - len(examples)]:
                value = rows.column(rule.column)[int(index)].as_py()
                shown = PERSONAL_MASK if rule.column in rules.personal and value is not None else repr(value)
                examples.append(f"{rules.key}={rows.column(rules.key)[int(index)].as_py()}: {shown}")

    def merge(self, other: RuleTally) -> None:
        for name, count in other.broken.items():
            self.broken[name] = self.broken.get(name, 0) + count
            self.examples[name] = (self.examples.get(name, []) + other.examples.get(name, []))[:EXAMPLES]
        self.keys += other.keys


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    broken: int
    examples: list[str]


def outcomes(tally: RuleTally, rules: RuleSet) -> list[RuleOutcome]:
    """Every rule with the rows that broke it in the unload; for uniqueness, the rows beyond a key's first."""
    found = []
    for rule in rules.rules:
        if rule.kind is not RuleKind.UNIQUE:
            found.append(RuleOutcome(rule, tally.broken.get(rule.name, 0), tally.examples.get(rule.name, [])))
            continue
        keys = np.concatenate(tally.keys) if tally.keys else np.array([], dtype=np.int64)
        values, counts = np.unique(keys, return_counts=True)
        repeated = values[counts > 1]
        examples = [f"{rules.key}={k.item()}: {int(counts[values == k][0])} rows" for k in repeated[:EXAMPLES]]
        found.append(RuleOutcome(rule, int(counts[counts > 1].sum() - len(repeated)), examples))
    return found
