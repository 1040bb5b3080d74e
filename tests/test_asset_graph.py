"""The asset graph run in process: layers, metadata, quarantine. (A range run against single runs is in
test_concurrent_runs.py, sharing its single runs.)"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from dagster_helpers import SMALL_SPEC, definitions, materializations, run_job, small_sample

from teem_assets import converted, layout
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import snapshot_rows

DAYS = [d.isoformat() for d in SMALL_SPEC.batch_dates]
EVERY_ASSET = {f"{layer}/{t}" for layer in ("parquet", "migrated", "postgres") for t in TABLES} | {
    f"{layer}/{a}" for layer in ("aggregates", "postgres") for a in AGGREGATES
}


def _corrupt(part: Path) -> list[bytes]:
    lines = part.read_bytes().split(b"\n")
    bad = [b'"1"|"2"|"3"|"organizer"|"accepted"|"h"|"h"|"p"|"f"|"j"|"2019-09-02 10:00:00"|"2019-09-02', b'"x"|"y"']
    part.write_bytes(b"\n".join(lines[:4] + bad + lines[4:]))
    return bad


def test_every_layer_for_a_range_with_a_corrupted_part(monkeypatch, tmp_path: Path, spark, postgres_url, pg_schema):
    root = small_sample(tmp_path / "root")
    bad = _corrupt(Path(layout.raw_batch(str(root), "fact_attendance", DAYS[1])) / "fact_attendance_0000_part_00")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    defs.resolve_job_def("migration_job")  # the job `teem run` uses
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(defs, "migration_job", DAYS[0], DAYS[-1], instance=instance)
    assert result.success
    found = materializations(result)
    assert set(found) == EVERY_ASSET
    # the convert stage's own log lines reach the step's log
    logged = [e.user_message for e in instance.all_logs(result.run_id) if "quarantined" in e.user_message]
    assert len([m for m in logged if "fact_attendance_0000_part_00" in m]) == len(bad), logged
    assert all(e.passed for e in result.get_asset_check_evaluations())

    attendance = found["parquet/fact_attendance"]
    assert attendance["rows_quarantined"] == len(bad)
    assert attendance["rows_read"] == attendance["rows_written"] + len(bad)
    assert attendance["quarantined_by_reason"] == {"unterminated_quote": 1, "field_count": 1}
    pointer = converted.read(layout.parquet_batch(str(root), "fact_attendance", DAYS[1]))
    assert pointer.quarantined == len(bad)
    quarantine = pq.read_table(pointer.quarantine).to_pylist()
    assert sorted(q["raw"] for q in quarantine) == sorted(bad)
    assert all(q["line"] in (5, 6) for q in quarantine)

    events = found["migrated/fact_event_by_day"]
    assert events["dagster/row_count"] > 0 and events["rows_quarantined"] == 0
    assert "dagster/column_schema" in events and "event_by_day_pk" in str(events["preview"])
    assert found["migrated/dim_date"]["dagster/row_count"] == found["parquet/dim_date"]["rows_written"]
    assert found["migrated/dim_date"]["dagster/row_count"] == len(list(snapshot_rows(SMALL_SPEC, "dim_date")))
