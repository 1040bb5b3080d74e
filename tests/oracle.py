"""What the generator says the current state is, computed without the code under test."""

from __future__ import annotations

from conftest import SAMPLE_SPEC

from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import batch_rows, snapshot_rows


def newest_by_key(table: str, spec=SAMPLE_SPEC, days=None) -> dict[object, tuple]:
    """For every key, the generated row with the greatest updated-at over the batches of `days` (default: all)."""
    definition = TABLES[table]
    pk = definition.column_names.index(definition.primary_key[0])
    updated = definition.column_names.index(definition.updated_at)
    newest: dict[object, tuple] = {}
    for day in spec.batch_dates if days is None else days:
        for row in batch_rows(spec, table, day):
            if row[pk] not in newest or row[updated] > newest[row[pk]][updated]:
                newest[row[pk]] = row
    return newest


def current_rows(table: str, spec=SAMPLE_SPEC) -> list[tuple]:
    if TABLES[table].is_dimension:
        return sorted(snapshot_rows(spec, table), key=repr)
    return sorted(newest_by_key(table, spec).values(), key=repr)
