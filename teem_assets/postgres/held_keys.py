"""Which of a batch's primary keys a PostgreSQL table already holds, read the cheaper of two ways.

When the table's keys between the batch's lowest and highest key are few (a day's batch of new keys beside
a few updates of recent rows), they are read straight off the primary key's index in PostgreSQL's binary
COPY format and matched here. When that range holds many more keys than the batch (an update of a row from
years ago widens it), the batch's keys are sent to the server instead and joined there. The planner's
estimate of the range's rows picks the way; either gives the same keys.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
from psycopg2 import sql

from teem_assets.postgres.copy import copy_batches
from teem_assets.postgres.keys import KeySet

# Read the range when it holds at most this many keys per batch key: 14 bytes a key on the wire against 8
# sent, and no join on the server.
RANGE_READ_LIMIT = 2.0
BINARY_HEADER = 19  # PGCOPY signature, flags, the header extension's length (then the extension)
BINARY_TRAILER = 2  # a field count of -1
BIGINT_ROW = np.dtype([("fields", ">i2"), ("length", ">i4"), ("value", ">i8")])


def copy_keys(cursor, name: str, keys: KeySet) -> None:  # noqa: ANN001
    """COPY the keys into the temporary table `name` (one bigint column)."""
    rows = pa.table({"k": keys.array()})
    copy_batches(cursor, "pg_temp", name, rows.schema, rows.to_batches(1 << 20))


def held_keys(cursor, target: sql.Composable, key: str, keys: KeySet) -> KeySet:  # noqa: ANN001
    """Those of `keys` that the table `target` holds in its integer primary key column `key`."""
    if not len(keys):
        return keys
    column = sql.Identifier(key)
    if estimated_rows_between(cursor, target, column, keys) <= RANGE_READ_LIMIT * len(keys):
        return keys.among(_keys_between(cursor, target, column, keys))
    return _joined(cursor, target, column, keys)


def estimated_rows_between(cursor, target: sql.Composable, column: sql.Identifier, keys: KeySet) -> float:  # noqa: ANN001
    cursor.execute(
        sql.SQL("EXPLAIN (FORMAT JSON) SELECT {c} FROM {t} WHERE {c} BETWEEN %s AND %s").format(c=column, t=target),
        (keys.low, keys.high),
    )
    plan = cursor.fetchone()[0]
    return float((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


def _keys_between(cursor, target: sql.Composable, column: sql.Identifier, keys: KeySet) -> np.ndarray:  # noqa: ANN001
    """The table's keys from the batch's lowest to its highest (as bigint, whatever the integer type)."""
    sink = io.BytesIO()
    query = sql.SQL("COPY (SELECT {c}::bigint FROM {t} WHERE {c} BETWEEN {low} AND {high}) TO STDOUT (FORMAT binary)")
    cursor.copy_expert(query.format(c=column, t=target, low=sql.Literal(keys.low), high=sql.Literal(keys.high)), sink)
    data = sink.getbuffer()
    start = BINARY_HEADER + int.from_bytes(data[BINARY_HEADER - 4 : BINARY_HEADER], "big")
    rows = np.frombuffer(data[start:-BINARY_TRAILER], dtype=BIGINT_ROW)
    return rows["value"].astype(np.int64)


def _joined(cursor, target: sql.Composable, column: sql.Identifier, keys: KeySet) -> KeySet:  # noqa: ANN001
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS teem_batch_keys (k bigint) ON COMMIT DROP")
    cursor.execute("TRUNCATE pg_temp.teem_batch_keys")
    copy_keys(cursor, "teem_batch_keys", keys)
    cursor.execute("ANALYZE pg_temp.teem_batch_keys")
    cursor.execute(
        sql.SQL(
            "SELECT t.{c} FROM {t} t JOIN pg_temp.teem_batch_keys b ON t.{c} = b.k WHERE t.{c} BETWEEN %s AND %s"
        ).format(c=column, t=target),
        (keys.low, keys.high),
    )
    return KeySet.of([row[0] for row in cursor.fetchall()])
