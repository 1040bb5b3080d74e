"""The project's executor: Dagster's in-process executor (one process per run, so the run's in-process stages
share one Spark application), with a run that waits for a pool made to behave (DESIGN §7):

- it records where it runs (host, process id and start, `teem_assets.workers`) as run tags, and renews a
  heartbeat tag while it goes on, so a run whose worker was killed can be told from a live one;
- before it waits for a pool, it ends the runs holding that pool whose worker is provably gone
  (`jobs.dead_runs`), and says in its log whose run it waits for;
- it sleeps while it waits: Dagster 1.13's `InstanceConcurrencyContext.interval_to_next_pending_claim_check`
  returns `min(0, …)`, never a positive interval, so its in-process loop polls without pause (a core at 100%);
- SIGTERM or Ctrl-C while it waits ends the run as canceled within a second: Dagster captures both signals
  during a run and raises them only inside a step's own code, which a waiting run never reaches.

`teem run` executes jobs through `dagster.execute_job`'s path (not `execute_in_process`, which replaces a
job's executor with Dagster's own), and the daemon's run workers use it as every job's executor.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, _core_in_process_executor_creation
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.executor.in_process import InProcessExecutor
from dagster._utils.interrupts import check_captured_interrupt, pop_captured_interrupt
from dagster._utils.timing import time_execution_scope
from dagster_shared.utils.timing import format_duration

from jobs.dead_runs import describe, end_dead_runs, holders
from teem_assets.workers import HEARTBEAT_TAG, Worker

WAIT_TICK_SECONDS = 0.5  # the longest sleep between two looks at a signal while waiting for a pool
WAITING_PREFIX = "waiting for pool"
ENDED_PREFIX = "ended run"


class WaitingConcurrencyContext(InstanceConcurrencyContext):
    """Dagster's per-run pool claims, with the three changes the module's docstring names."""

    def __init__(self, instance: dg.DagsterInstance, run: dg.DagsterRun, heartbeat_timeout: float) -> None:
        super().__init__(instance, run)
        self._run = run
        self._heartbeat_timeout = heartbeat_timeout
        self._told: dict[str, tuple[str, ...]] = {}  # pool -> the holders last named in the log

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        if check_captured_interrupt():
            pop_captured_interrupt()
            self._instance.report_run_canceling(
                self._run, f"Interrupted (SIGTERM or SIGINT) while {WAITING_PREFIX} {concurrency_key}."
            )
            raise DagsterExecutionInterruptedError()
        attempts = self._pending_claim_counts[step_key]
        claimed = super().claim(concurrency_key, step_key, step_priority)
        if claimed or self._pending_claim_counts[step_key] == attempts:
            return claimed  # claimed, or not yet time to ask the instance again
        ended = end_dead_runs(self._instance, self._heartbeat_timeout)
        for item in ended:
            self._note(f"{ENDED_PREFIX} {item.run_id}: {item.why}; its pool slots were freed")
        if ended:
            self._pending_timeouts[step_key] = 0.0  # ask again at once
            return False
        named = tuple(describe(run) for run in holders(self._instance, concurrency_key))
        if named != self._told.get(concurrency_key):
            self._told[concurrency_key] = named
            self._note(f"{WAITING_PREFIX} {concurrency_key} ({step_key}), held by {', '.join(named) or 'no run'}")
        return False

    def interval_to_next_pending_claim_check(self) -> float:
        due = [self._pending_timeouts[key] for key in self._pending_claims if key in self._pending_timeouts]
        if not due:
            return 0.0
        return min(max(min(due) - time.time(), 0.0), WAIT_TICK_SECONDS)

    def _note(self, message: str) -> None:
        self._instance.report_engine_event(message, self._run, EngineEventData())


def _waiting_execution_iterator(
    heartbeat_timeout: float,
) -> Callable[[PlanExecutionContext, ExecutionPlan], Iterator[DagsterEvent]]:
    def iterate(job_context: PlanExecutionContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        instance, run = job_context.instance, job_context.dagster_run
        with WaitingConcurrencyContext(instance, run, heartbeat_timeout) as concurrency:
            yield from inner_plan_execution_iterator(job_context, execution_plan, concurrency)

    return iterate


class _Heartbeat:
    """Renews the run's heartbeat tag every fifth of the timeout, from a thread of its own."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, timeout: float) -> None:
        self._instance, self._run_id, self._timeout = instance, run_id, timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="teem-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._instance.add_run_tags(self._run_id, {**Worker.this_process().tags(), HEARTBEAT_TAG: f"{time.time():.0f}"})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(max(self._timeout / 5, 1.0)):
            self._instance.add_run_tags(self._run_id, {HEARTBEAT_TAG: f"{time.time():.0f}"})


class WaitingInProcessExecutor(InProcessExecutor):
    def __init__(self, heartbeat_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._heartbeat_timeout = heartbeat_timeout

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), execution_plan.step_keys_to_execute),
        )
        heartbeat = _Heartbeat(plan_context.instance, plan_context.run_id, self._heartbeat_timeout)
        with heartbeat, time_execution_scope() as timer:
            yield from iter(
                ExecuteRunWithPlanIterable(
                    execution_plan=plan_context.execution_plan,
                    iterator=_waiting_execution_iterator(self._heartbeat_timeout),
                    execution_context_manager=PlanExecutionContextManager(
                        job=plan_context.job,
                        retry_mode=plan_context.retry_mode,
                        execution_plan=plan_context.execution_plan,
                        run_config=plan_context.run_config,
                        dagster_run=plan_context.dagster_run,
                        instance=plan_context.instance,
                        raise_on_error=plan_context.raise_on_error,
                        output_capture=plan_context.output_capture,
                        step_dependency_config=self.step_dependency_config,
                    ),
                )
            )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()}) in {format_duration(timer.millis)}",
            event_specific_data=EngineEventData.in_process(os.getpid(), execution_plan.step_keys_to_execute),
        )


def waiting_in_process_executor(heartbeat_timeout: float) -> dg.ExecutorDefinition:
    """Dagster's in-process executor, with waits for a pool that sleep, end dead holders and stop on a signal;
    a run's heartbeat is renewed every fifth of `heartbeat_timeout` (TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS)."""

    @dg.executor(name="in_process", config_schema=IN_PROC_CONFIG)
    def in_process(init_context: dg.InitExecutorContext) -> WaitingInProcessExecutor:
        core = _core_in_process_executor_creation(init_context.executor_config)
        return WaitingInProcessExecutor(
            heartbeat_timeout, retries=core.retries, step_dependency_config=core.step_dependency_config
        )

    return in_process
