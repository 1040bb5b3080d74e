"""Servers the tests start as processes of their own: started in a new process group with default signal
handlers (DESIGN §11), and ended as a whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], cwd: str, log: str) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        try:
            yield process
        finally:
            for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 1.0) -> object:
    """`check()`'s first truthy value. An error it raises means "not yet" (a server still starting), except a failed
    assert, which is an answer and fails the test at once instead of after the timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as error:
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s (last error: {last_error})")


@contextlib.contextmanager
def spark_standalone_cluster(folder: str, env: dict[str, str], worker_tz: str) -> Iterator[str]:
    """A Spark standalone master and one worker from the pyspark installation (DESIGN §11), the worker in
    time zone `worker_tz`; yields the master URL. Executors' folders land in `folder`/work."""
    import pyspark
    import requests

    spark_class = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")
    port, ui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    base = {**env, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    master_command = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                      str(port), "--webui-port", str(ui)]  # fmt: skip
    worker_command = [spark_class, "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1",
                      "--cores", "2", "--memory", "6g", "--webui-port", str(free_port()),
                      "--work-dir", os.path.join(folder, "work")]  # fmt: skip
    with running(master_command, base, folder, os.path.join(folder, "master.log")):
        wait_for(lambda: requests.get(f"http://127.0.0.1:{ui}/json/", timeout=2).ok, 120, "the Spark master")
        with running(worker_command, {**base, "TZ": worker_tz}, folder, os.path.join(folder, "worker.log")):

            def alive() -> bool:
                return requests.get(f"http://127.0.0.1:{ui}/json/", timeout=2).json().get("aliveworkers", 0) == 1

            wait_for(alive, 120, "the Spark worker to register")
            yield master
