"""COPY from Arrow record batches in PostgreSQL's binary format: a thread encodes batches (pgpq) while
psycopg2 streams the previous ones, so encoding overlaps the COPY and memory holds only a few chunks,
whatever the batch size. Binary rows spare the server the text parsing that is most of a CSV COPY's cost."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

import pgpq
import pyarrow as pa
from psycopg2 import sql

from teem_assets.postgres.ddl import qualified

CHUNKS_IN_FLIGHT = 4
_END = object()


class _ChunkStream:
    """A file-like object for copy_expert: read() hands over the chunks the producer thread encoded."""

    def __init__(self, chunks: queue.Queue) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._current and not self._done:
            item = self._chunks.get()
            if item is _END:
                self._done = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self._current = memoryview(item)
        if size < 0:
            size = len(self._current)
        piece, self._current = self._current[:size], self._current[size:]
        return bytes(piece)


def copy_batches(
    cursor,  # noqa: ANN001 - psycopg2 cursor
    schema: str,
    table: str,
    types: pa.Schema,
    batches: Iterable[pa.RecordBatch],
) -> int:
    """COPY the batches into schema.table's columns named by `types`; return the rows sent.

    `types` holds the Arrow type of each column's PostgreSQL type (int16 for smallint, timestamp[us] for
    timestamp, ...): binary COPY has no text to coerce, so every batch is cast to it first.
    """
    chunks: queue.Queue = queue.Queue(maxsize=CHUNKS_IN_FLIGHT)
    rows = [0]
    stop = threading.Event()

    def produce() -> None:
        try:
            encoder = pgpq.ArrowToPostgresBinaryEncoder(types)
            chunks.put(encoder.write_header())
            for batch in batches:
                if stop.is_set():
                    return
                chunks.put(encoder.write_batch(batch.select(types.names).cast(types)))
                rows[0] += batch.num_rows
            chunks.put(encoder.finish())
            chunks.put(_END)
        except BaseException as error:  # handed to the reading side, which raises it in the COPY
            chunks.put(error)

    producer = threading.Thread(target=produce, name="copy-binary", daemon=True)
    producer.start()
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
        qualified(schema, table), sql.SQL(", ").join(map(sql.Identifier, types.names))
    )
    try:
        cursor.copy_expert(statement, _ChunkStream(chunks), size=1 << 20)
    finally:
        stop.set()
        while producer.is_alive():  # let a producer blocked on a full queue finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                producer.join(0.05)
    return rows[0]
