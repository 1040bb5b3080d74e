"""Where a run's worker process lives, and whether it provably still does (DESIGN §7: a dead run never blocks
the living). A worker is named by its host, its process id and that process's start (the kernel's boot and the
start time in clock ticks since it), so a process id reused after a kill or a reboot is not mistaken for it.
A worker on another host is judged by its heartbeat alone."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

HOST_TAG = "teem/worker_host"
PID_TAG = "teem/worker_pid"
STARTED_TAG = "teem/worker_started"  # "<boot id>:<start ticks>", or "" where /proc does not say
HEARTBEAT_TAG = "teem/heartbeat"  # seconds since the epoch, renewed while the run goes on


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The start of a live process as "<boot id>:<start ticks>" ("" where the system does not say, not Linux),
    or None when no process has that id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "" if _exists(pid) else None
    # the command name in parentheses may hold spaces; the fields after it are space-separated
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{_boot_id()}:{fields[19]}"  # field 22 of proc(5), the 20th after the name and state


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    started: str

    @classmethod
    def this_process(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()) or "")

    def tags(self) -> dict[str, str]:
        return {HOST_TAG: self.host, PID_TAG: str(self.pid), STARTED_TAG: self.started}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Worker | None:
        if HOST_TAG not in tags or not tags.get(PID_TAG, "").isdigit():
            return None
        return cls(tags[HOST_TAG], int(tags[PID_TAG]), tags.get(STARTED_TAG, ""))

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"


def why_gone(tags: dict[str, str], now: float, heartbeat_timeout: float) -> str | None:
    """Why the worker a run's tags name is provably gone, or None while it may still be running: on this host,
    no process with its id and start; elsewhere, no heartbeat for `heartbeat_timeout` seconds."""
    worker = Worker.from_tags(tags)
    if worker is not None and worker.host == socket.gethostname():
        started = process_start(worker.pid)
        if started is None:
            return f"its worker, {worker}, no longer exists"
        if worker.started and started and started != worker.started:
            return f"its worker, {worker}, no longer exists (that process id now names another process)"
        return None
    beat = tags.get(HEARTBEAT_TAG)
    if beat is None:
        return None  # a run from before these tags, or a launcher that does not run our executor: not provable
    silent = now - float(beat)
    if silent > heartbeat_timeout:
        where = f", {worker}," if worker else ""
        return f"its worker{where} sent no heartbeat for {silent:.0f} s (more than {heartbeat_timeout:.0f} s)"
    return None
