"""COPY from Arrow record batches: a thread turns batches into CSV while psycopg2 streams the previous ones,
so serialisation overlaps the COPY and memory holds only a few chunks, whatever the batch size."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from teem_assets.postgres.ddl import qualified

CHUNKS_IN_FLIGHT = 4
_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_END = object()


class _CsvStream:
    """A file-like object for copy_expert: read() hands over the CSV chunks the producer thread made."""

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
    columns: list[str],
    batches: Iterable[pa.RecordBatch],
) -> int:
    """COPY the batches (whose columns are `columns`, in order) into schema.table; return the rows sent.

    Arrow's CSV writer quotes every string and leaves NULL unquoted and empty, which is exactly how
    PostgreSQL's CSV format tells NULL from the empty string.
    """
    chunks: queue.Queue = queue.Queue(maxsize=CHUNKS_IN_FLIGHT)
    rows = [0]
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                sink = pa.BufferOutputStream()
                pacsv.write_csv(batch, sink, _WRITE_OPTIONS)
                chunks.put(sink.getvalue())
                rows[0] += batch.num_rows
            chunks.put(_END)
        except BaseException as error:  # handed to the reading side, which raises it in the COPY
            chunks.put(error)

    producer = threading.Thread(target=produce, name="copy-csv", daemon=True)
    producer.start()
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        qualified(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    try:
        cursor.copy_expert(statement, _CsvStream(chunks), size=1 << 20)
    finally:
        stop.set()
        while producer.is_alive():  # let a producer blocked on a full queue finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                producer.join(0.05)
    return rows[0]
