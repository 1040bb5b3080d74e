"""The Pipes messages of a `spark-submit`ted stage, read from a file one whole line at a time.

Dagster's own file reader (`PipesTempFileMessageReader`) hands `json.loads` whatever `readline()` returns, and
`readline()` at the end of a file returns the part of a line the writer has not finished. A report of a few
kilobytes (a table's preview) is written in more than one piece, so now and then the reader sees half of it,
its thread dies on the JSON error, and every later message is lost: the step then fails with "did not yield
expected outputs" although the stage did its work. This reader holds an unfinished line back until its end
arrives, and names a line that never ends (the driver died writing it)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.pipes.client import PipesParams
from dagster._core.pipes.context import PipesMessageHandler
from dagster_pipes import PipesDefaultMessageWriter

POLL_SECONDS = 0.05


class UnfinishedMessage(Exception):
    """The driver ended in the middle of writing a message."""


def whole_lines(path: str, finished: threading.Event) -> Iterator[str]:
    """The lines of `path` as a writer appends them, each only once its newline is written; ends when
    `finished` is set and everything written before it has been read."""
    pending = ""
    with open(path, encoding="utf-8") as stream:
        while True:
            done = finished.is_set()  # read after: what was written before `finished` is all read below
            chunk = stream.read()
            if chunk:
                *lines, pending = (pending + chunk).split("\n")
                yield from (line for line in lines if line.strip())
            elif done:
                if pending.strip():
                    raise UnfinishedMessage(f"the stage's last message has no end: {pending[:200]!r}…")
                return
            else:
                time.sleep(POLL_SECONDS)


class PipesWholeLineFileMessageReader(dg.PipesMessageReader):
    """Messages in a temporary file, one JSON object per line, as `open_dagster_pipes` writes them by default."""

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        finished = threading.Event()
        with tempfile.TemporaryDirectory(prefix="teem-pipes-") as folder:
            path = os.path.join(folder, "messages")
            open(path, "w").close()
            reader = threading.Thread(target=self._read, args=(path, handler, finished), daemon=True)
            reader.start()
            try:
                yield {
                    PipesDefaultMessageWriter.FILE_PATH_KEY: path,
                    PipesDefaultMessageWriter.INCLUDE_STDIO_IN_MESSAGES_KEY: False,
                }
            finally:
                finished.set()
                reader.join()

    @staticmethod
    def _read(path: str, handler: PipesMessageHandler, finished: threading.Event) -> None:
        try:
            for line in whole_lines(path, finished):
                handler.handle_message(json.loads(line))
        except Exception:
            handler.report_pipes_framework_exception("the stage's message reader", sys.exc_info())

    def no_messages_debug_text(self) -> str:
        return "Attempted to read messages from a file the stage's driver appends to (PipesDefaultMessageWriter)."
