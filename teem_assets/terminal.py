"""What `teem run` and `teem demo` show while a run goes on: a line per stage as it ends, with its rows and
seconds, and each failed check. Spark's, the JVM's and Dagster's own logs go to a file the run names."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dagster as dg
from dagster._core.events import DagsterEventType

from jobs.executor import ENDED_PREFIX, WAITING_PREFIX

STEP_ENDS = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}
POLL_SECONDS = 0.5


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[TextIO]:
    """Point this process's stdout and stderr at `path`, and with them every child's (the JVM, spark-submit);
    yields a stream that still reaches the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        terminal.close()


@dataclass
class _Step:
    started: float | None = None
    rows: dict[str, int] = field(default_factory=dict)  # by asset: a range's partitions each carry its total


@dataclass
class StageProgress:
    """Follows a run's events in the instance from a thread of its own and writes a line to `out` as each
    stage ends; `failures` keeps the failed stages' errors for the summary."""

    instance: dg.DagsterInstance
    run_id: str
    out: TextIO
    failures: list[str] = field(default_factory=list)
    _steps: dict[str, _Step] = field(default_factory=dict)
    _cursor: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StageProgress:
        self._thread = threading.Thread(target=self._follow, name="stage-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()  # the last events, written after the thread's final poll

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._read()

    def _read(self) -> None:
        while True:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self._cursor, limit=500)
            for record in connection.records:
                self._on(record.event_log_entry)
            self._cursor = connection.cursor
            if not connection.has_more:
                return

    def _on(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is not None and event.event_type == DagsterEventType.ENGINE_EVENT:
            if (event.message or "").startswith((WAITING_PREFIX, ENDED_PREFIX)):
                self.out.write(f"  {event.message}\n")
            return
        if event is None or event.step_key is None:
            return
        step = self._steps.setdefault(event.step_key, _Step())
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            step.started = entry.timestamp
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            step.rows[materialization.asset_key.to_user_string()] = int(rows.value) if rows is not None else 0
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                check = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                self.out.write(f"    check {check} failed ({evaluation.severity.value})\n")
        elif kind == DagsterEventType.STEP_UP_FOR_RETRY:
            self.out.write(f"  {event.step_key:<22} retrying: {_first_line(event)}\n")
        elif kind in STEP_ENDS:
            seconds = entry.timestamp - step.started if step.started is not None else 0.0
            self.out.write(_stage_line(event.step_key, kind, step, seconds, _first_line(event)))
            if kind == DagsterEventType.STEP_FAILURE:
                self.failures.append(f"{event.step_key}: {_first_line(event)}")


def _first_line(event: dg.DagsterEvent) -> str:
    error = getattr(event.event_specific_data, "error", None)
    message = error.message if error is not None else (event.message or "")
    return message.strip().splitlines()[0] if message.strip() else ""


def _stage_line(step_key: str, kind: DagsterEventType, step: _Step, seconds: float, error: str) -> str:
    if kind == DagsterEventType.STEP_SUCCESS:
        tables = f"{len(step.rows)} table{'s' if len(step.rows) != 1 else ''}"
        return f"  {step_key:<22} {tables:>9} {sum(step.rows.values()):>9} rows {seconds:>6.1f} s\n"
    if kind == DagsterEventType.STEP_SKIPPED:
        return f"  {step_key:<22} skipped\n"
    return f"  {step_key:<22} FAILED after {seconds:.1f} s: {error}\n"


def run_log_path(logs: Path, run_id: str) -> Path:
    return logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{run_id[:8]}.log"
