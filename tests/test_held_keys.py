"""The key set the PostgreSQL exports filter and split by, and the two ways of asking PostgreSQL which of a
batch's keys a table holds: each checked against Python's own set arithmetic on the same keys."""

from __future__ import annotations

import random

import numpy as np
import psycopg2
import pyarrow as pa
import pytest
from psycopg2 import sql

from teem_assets.postgres import held_keys as held_keys_module
from teem_assets.postgres.held_keys import estimated_rows_between, held_keys
from teem_assets.postgres.keys import KeySet


def test_a_key_set_is_its_distinct_keys_and_answers_membership_row_by_row() -> None:
    keys = KeySet.of(pa.chunked_array([[9, 3, None, 3], [-(2**62), 2**62, 9]], pa.int64()))
    assert keys.values.tolist() == [-(2**62), 3, 9, 2**62]
    assert (keys.low, keys.high, len(keys)) == (-(2**62), 2**62, 4)
    column = pa.array([3, 4, None, 2**62, -(2**62), 10, 9], pa.int64())
    assert keys.contains(column).to_pylist() == [True, False, False, True, True, False, True]
    assert keys.contains(pa.array([1, 2], pa.int32())).to_pylist() == [False, False]
    assert KeySet.of([]).contains(column).to_pylist() == [False] * 7
    assert keys.among(np.array([1, 3, 5, 9], np.int64)).values.tolist() == [3, 9]


def test_membership_agrees_with_python_sets_on_random_keys() -> None:
    generator = random.Random(7)
    members = {generator.randrange(-(10**15), 10**15) for _ in range(20_000)}
    ordered = sorted(members)
    asked = [
        generator.choice(ordered) if generator.random() < 0.3 else generator.randrange(-(10**15), 10**15)
        for _ in range(50_000)
    ]
    found = KeySet.of(list(members)).contains(pa.array(asked, pa.int64())).to_pylist()
    assert found == [value in members for value in asked]
    assert sum(found) > 10_000


def _table_with_keys(
    url: str, schema: str, keys: list[int], key_type: str = "bigint"
) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        cursor.execute(f'CREATE TABLE "{schema}".facts (k {key_type} PRIMARY KEY, v text)')
        cursor.execute(f"INSERT INTO \"{schema}\".facts SELECT k, 'x' FROM unnest(%s::bigint[]) k", (keys,))
        cursor.execute(f'ANALYZE "{schema}".facts')
    return connection


@pytest.mark.parametrize("way, key_type", [("range", "bigint"), ("join", "bigint"), ("range", "integer")])
def test_both_ways_find_exactly_the_keys_the_table_holds(
    postgres_url: str, pg_schema: str, way: str, key_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = random.Random(11)
    table_keys = sorted(generator.sample(range(10**6), 30_000))
    batch = [*generator.sample(table_keys, 2_000), *generator.sample(range(10**6, 2 * 10**6), 8_000), 10**6 - 1]
    monkeypatch.setattr(held_keys_module, "RANGE_READ_LIMIT", float("inf") if way == "range" else 0.0)
    connection = _table_with_keys(postgres_url, pg_schema, table_keys, key_type)
    with connection, connection.cursor() as cursor:
        found = held_keys(cursor, sql.Identifier(pg_schema, "facts"), "k", KeySet.of(batch))
    connection.close()
    assert found.values.tolist() == sorted(set(batch) & set(table_keys))
    assert len(found) >= 2_000


def test_the_estimate_picks_the_range_for_new_keys_and_the_join_for_a_range_as_wide_as_history(
    postgres_url: str, pg_schema: str
) -> None:
    """A day of new keys above a few recent ones reads the range; one update of the oldest row makes the
    range the whole table, and the batch's keys are sent instead."""
    table_keys = list(range(1, 100_001))
    connection = _table_with_keys(postgres_url, pg_schema, table_keys)
    target, column = sql.Identifier(pg_schema, "facts"), sql.Identifier("k")
    new_day = KeySet.of(range(99_001, 105_001))
    with_old_update = KeySet.of([1, *range(99_001, 105_001)])
    limit = held_keys_module.RANGE_READ_LIMIT
    with connection, connection.cursor() as cursor:
        narrow = estimated_rows_between(cursor, target, column, new_day)
        wide = estimated_rows_between(cursor, target, column, with_old_update)
        assert narrow <= limit * len(new_day) < wide
        assert held_keys(cursor, target, "k", new_day).values.tolist() == list(range(99_001, 100_001))
        assert held_keys(cursor, target, "k", with_old_update).values.tolist() == [1, *range(99_001, 100_001)]
    connection.close()
