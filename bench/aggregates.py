"""The aggregates on the generated sample: rows, wall time of each, and the cost of one batch with 1 vs 14
days of history before it (DESIGN §10), each measured as the `aggregates` step of a real Dagster run.
Usage: python bench/aggregates.py [--url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg
import psycopg2
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from teem_assets.sample.generate import generate_sample
from teem_assets.sample.spec import SampleSpec

FIRST = dt.date(2019, 9, 1)


def _run(defs: dg.Definitions, job: str, first: dt.date, last: dt.date) -> dict[str, object]:
    """Run `job` for a range of batches; return each step's seconds and the aggregates' metadata."""
    instance = dg.DagsterInstance.ephemeral()
    tags = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags)
    assert result.success
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    metadata = {}
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        if m.asset_key.path[0] == "aggregates":
            metadata[m.asset_key.path[1]] = {k: v.value for k, v in m.metadata.items() if k != "recomputed"}
    return {"seconds": seconds, "aggregates": metadata}


def _location(root: Path, url: str, schema: str) -> dg.Definitions:
    os.environ.update(TEEM_ROOT=str(root), TEEM_HOME=str(root / ".teem"), TEEM_POSTGRES_URL=url, TEEM_PG_SCHEMA=schema)
    from teem_assets.definitions import build_definitions

    return build_definitions()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("TEEM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        generate_sample(str(root), SampleSpec(start=FIRST, days=15, seed=7))
        defs = _location(root, args.url, "teem_bench_aggregates")
        day = dt.timedelta(days=1)
        whole = _run(defs, "migration_job", FIRST, FIRST + 13 * day)
        step = whole["seconds"]["aggregates"]
        print(f"14-day sample, one run: aggregates step {step:.1f} s (both aggregates, every day)")
        for name, values in whole["aggregates"].items():
            print(f"  {name}: {values['rows_in_recomputed_partitions']} rows, {values} ")
        after_14 = _run(defs, "batch_job", FIRST + 14 * day, FIRST + 14 * day)
        step = after_14["seconds"]["aggregates"]
        print(f"batch 15 after 14 days: aggregates step {step:.1f} s, {after_14['aggregates']}")
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        generate_sample(str(root), SampleSpec(start=FIRST, days=2, seed=7))
        defs = _location(root, args.url, "teem_bench_aggregates_short")
        _run(defs, "migration_job", FIRST, FIRST)
        after_1 = _run(defs, "batch_job", FIRST + day, FIRST + day)
        print(f"batch 2 after 1 day: aggregates step {after_1['seconds']['aggregates']:.1f} s, {after_1['aggregates']}")
        ratio = after_14["seconds"]["aggregates"] / after_1["seconds"]["aggregates"]
        print(f"one batch's aggregates step, 14 days of history / 1 day: {ratio:.2f}x")
    connection = psycopg2.connect(args.url)
    with connection, connection.cursor() as cursor:
        for schema in ("teem_bench_aggregates", "teem_bench_aggregates_short"):
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    connection.close()


if __name__ == "__main__":
    main()
