"""The Dagster UI as people use it, in Debian's Chromium: the lineage, the resources and the launchpad showing
variables and never a secret, a backfill and a partition launched from an asset's page, a job launched through
the GraphQL API as the launchpad sends it, and a failed blocking check read on its page, against `dagster dev`
(webserver and daemon) on the 14-day sample.
Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from browser import chromium_page, launch_from_asset_page, lineage_picture, open_page, screenshot
from dagster_ui import base_url, dagster_dev, local_env
from playwright.sync_api import Page, expect
from servers import free_port, wait_for
from tables import iceberg_rows

from teem_assets import layout
from teem_assets.runner import ensure_instance_settings
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

# Text values without characters to escape: one record per line, so the test counts a part's rows itself.
SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7, plain_text=True)
GROUPS = {"raw", "parquet", "migrated", "aggregates", "postgres", "maintenance"}
BACKFILLS = """
{ partitionBackfillsOrError { ... on PartitionBackfills { results {
    id status partitionNames runs(limit: 10) { runId status tags { key value } }
} } } }
"""


def _lines(folder: str) -> int:
    return sum(len(part.read_bytes().splitlines()) for part in Path(folder).iterdir() if "_part_" in part.name)


SENSOR_TICKS = """
query($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector) { ... on Sensors { results {
    name sensorState { status ticks(limit: 50) { status error { message } } }
} } } }
"""


def _lineage_shows_every_group(page: Page, base: str) -> None:
    open_page(page, f"{base}/asset-groups")
    groups = page.locator("[class*=collapsedGroupNodeBox]")
    groups.first.wait_for()
    assert {text.strip().splitlines()[0] for text in groups.all_inner_texts()} == GROUPS
    screenshot(page, "lineage")
    page.locator("body").click(position={"x": 900, "y": 300})
    page.keyboard.press("Alt+KeyE")  # the graph's "Expand all groups"
    expect(groups).to_have_count(0)
    assert lineage_picture(page, "lineage-assets").stat().st_size > 50_000  # docs/lineage.png


def _backfill_of_three_days_is_one_run(page: Page, base: str, graphql: Callable[..., dict]) -> None:
    launch_from_asset_page(page, base, "parquet/fact_event_by_day", "[2019-09-01...2019-09-03]", "Launch backfill")
    page.get_by_text(re.compile(r"^Created backfill")).wait_for()

    def finished() -> dict | None:
        [backfill] = graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
        return backfill if backfill["status"].startswith("COMPLETED") or backfill["status"] == "FAILED" else None

    backfill = wait_for(finished, 600, "the backfill to finish", interval=2)
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert backfill["partitionNames"] == ["2019-09-01", "2019-09-02", "2019-09-03"]
    [run] = backfill["runs"]  # one run covers the three days: the stages' single-run backfill policy
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS"
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        "2019-09-01",
        "2019-09-03",
    )
    open_page(page, f"{base}/runs/b/{backfill['id']}")
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    page.get_by_text("100% completed").wait_for()
    screenshot(page, "backfill")


def _one_partition_launched_succeeds(page: Page, base: str) -> None:
    # Parquet, not migrated: a migrated partition without its PostgreSQL export leaves the exports behind the
    # migrated tables, and the aggregates' reference check of any later run then rightly fails.
    launch_from_asset_page(page, base, "parquet/fact_event_by_day", "2019-09-02", "Launch 1 run")
    page.get_by_text(re.compile(r"^Launched run")).wait_for()
    page.get_by_role("link", name="View").first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    page.get_by_text("partition: 2019-09-02").wait_for()
    page.get_by_text("Success", exact=True).first.wait_for(timeout=600_000)
    screenshot(page, "partition-run")


# Canaries in every secret setting, the PostgreSQL password written into the URL as it is.
PG_CANARY = "Pg/canary#pw?x@1"
SECRETS = {
    "TEEM_SMTP_USER": "alerts",
    "TEEM_SMTP_PASSWORD": "smtp-canary",
    "TEEM_SLACK_TOKEN": "xoxb-canary",
    "TEEM_SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing listens: the failed run's alert fails, and says so
}


def _with_password(url: str, password: str) -> str:
    if "://" not in url:
        return f"{url} password='{password}'"
    scheme, rest = url.split("://", 1)
    credentials, location = rest.split("@", 1)
    return f"{scheme}://{credentials.split(':')[0]}:{password}@{location}"


def _settings_show_their_variables_not_values(page: Page, base: str, location: str, root: Path) -> None:
    for resource, variables in (
        ("storage", ["TEEM_ROOT"]),
        ("postgres", ["TEEM_POSTGRES_URL"]),
        ("email", ["TEEM_SMTP_PASSWORD", "TEEM_SMTP_USER"]),
        ("slack", ["TEEM_SLACK_TOKEN"]),
    ):
        open_page(page, f"{base}/locations/{location}/resources/{resource}")
        for variable in variables:
            assert "Env var" in page.get_by_role("row").filter(has_text=variable).inner_text(), variable
        assert "canary" not in page.content().lower()
        assert str(root) not in page.locator("body").inner_text()
    screenshot(page, "postgres-resource")
    open_page(page, f"{base}/locations/{location}/jobs/migration_job/playground")
    page.get_by_text("Scaffold missing config").or_(page.get_by_text("Launch run")).first.wait_for()
    launchpad = page.content().lower()
    assert "thresholds" in launchpad and "canary" not in launchpad
    screenshot(page, "launchpad")


LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
} }
"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
MATERIALIZED = """
query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
    assetMaterializations(limit: 50) { partition metadataEntries { label ... on IntMetadataEntry { intValue } } }
} } }
"""


RUNS = """
query($job: String!) { runsOrError(filter: {pipelineName: $job}) { ... on Runs { results {
    runId status tags { key value }
} } } }
"""
STATUSES = """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
} } }
"""
PAST_PARQUET = [
    ["migrated", "fact_event_by_day"],
    ["migrated", "fact_attendance"],
    ["postgres", "fact_event_by_day"],
    ["postgres", "fact_attendance"],
    ["aggregates", "agg_hourly_space"],
    ["aggregates", "week_people_count"],
    ["postgres", "agg_hourly_space"],
    ["postgres", "week_people_count"],
]


def _range_launched_through_graphql(graphql: Callable[..., dict], location: dict, root: Path) -> tuple[int, int]:
    """What the UI's launchpad sends: every layer of 2019-09-04..09-08, the last date's unload of
    fact_event_by_day cut short. The run stops at Parquet; held_back_sensor (the daemon) runs the other four dates
    on their own; every layer past Parquet shows 09-08 failed and 09-04..07 materialized."""
    short = layout.raw_batch(str(root), "fact_event_by_day", "2019-09-08")
    for part in Path(short).iterdir():
        if part.name.startswith("fact_event_by_day_0001_part_"):  # one Redshift slice's files never arrived
            part.unlink()
    rows, baseline = _lines(short), _lines(layout.raw_batch(str(root), "fact_event_by_day", "2019-09-01"))
    assert rows < 0.95 * baseline

    repository = location["locationOrLoadError"]["repositories"][0]
    assert {"snapshot_job", "batch_job", "migration_job", "admitted_job"} <= {j["name"] for j in repository["jobs"]}
    selector = {"repositoryLocationName": location["name"], "repositoryName": repository["name"]}
    tags = {"dagster/asset_partition_range_start": "2019-09-04", "dagster/asset_partition_range_end": "2019-09-08"}
    params = {
        "selector": {**selector, "jobName": "migration_job"},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = graphql(STATUS, id=run_id)["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    assert wait_for(finished, 600, "the range run to finish", interval=2) == "FAILURE"

    def admitted() -> list[dict] | None:
        runs = graphql(RUNS, job="admitted_job")["runsOrError"]["results"]
        return runs if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    [run] = wait_for(admitted, 600, "held_back_sensor's admitted_job run to finish", interval=2)
    run_tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS"
    assert (run_tags["dagster/asset_partition_range_start"], run_tags["dagster/asset_partition_range_end"]) == (
        "2019-09-04",
        "2019-09-07",
    )
    assert run_tags["teem/held_back_by"] == run_id
    for key in PAST_PARQUET:
        ranges = graphql(STATUSES, key={"path": key})["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
        found = sorted((r["status"], r["startKey"], r["endKey"]) for r in ranges)
        assert found == [("FAILED", "2019-09-08", "2019-09-08"), ("MATERIALIZED", "2019-09-04", "2019-09-07")], key
    for key, label in ((["migrated", "fact_event_by_day"], "dagster/row_count"),
                       (["aggregates", "agg_hourly_space"], "rows_in_recomputed_partitions")):  # fmt: skip
        found = graphql(MATERIALIZED, key={"path": key})["assetOrError"]["assetMaterializations"]
        of_day = [
            {e["label"]: e.get("intValue") for e in m["metadataEntries"]}
            for m in found
            if m["partition"] == "2019-09-04"
        ]
        assert of_day and max(metadata[label] for metadata in of_day) > 0, (key, of_day)
    return rows, baseline


def _held_back_date_shows_failed(page: Page, base: str) -> None:
    """The asset's partitions page, failed partitions only: the short date alone, red."""
    open_page(page, f"{base}/assets/migrated/fact_event_by_day?view=partitions")
    page.get_by_text("Failed (1)", exact=True).wait_for()
    page.get_by_text("Materialized (4)", exact=True).click()  # 2019-09-04..07
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()
    page.get_by_text("1 Partitions Selected").wait_for()
    listed = page.get_by_text(re.compile(r"^2019-09-\d\d$"))
    listed.first.wait_for()
    ran = {f"2019-09-0{day}" for day in range(4, 9)}
    assert set(listed.all_inner_texts()) & ran == {"2019-09-08"}  # beside the timeline's first date
    screenshot(page, "held-back-partition")


def _failed_check_shows_its_metadata(page: Page, base: str, rows: int, baseline: int) -> None:
    open_page(page, f"{base}/assets/parquet/fact_event_by_day?view=checks")
    page.get_by_text("volume_vs_trailing_median").first.click()
    page.get_by_text("This is a blocking asset check.").wait_for()
    metadata = page.locator("table", has_text="short_batches")
    assert re.search(r"short_batches\s+2019-09-08", metadata.inner_text())
    assert re.search(r"threshold\s+0\.95", metadata.inner_text())
    page.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("2019-09-08:").wait_for()
    page.wait_for_timeout(500)  # the dialog fades in
    shown = dialog.inner_text()
    share = f"{rows / baseline:.1%}"
    assert f"2019-09-08: {rows} rows, {share} of {baseline}, the fewest of 2019-09-01" in shown
    screenshot(page, "failed-check")


def test_a_user_session_in_the_dagster_ui(tmp_path: Path, postgres_url: str, pg_schema: str):
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions())
    env = {**local_env(tmp_path, root, _with_password(postgres_url, PG_CANARY), pg_schema), **SECRETS}
    ensure_instance_settings(env["DAGSTER_HOME"])  # as `./dev.sh ui` does: pools and run retries
    port = free_port()
    base = base_url(port)
    with dagster_dev(env, tmp_path, port) as (graphql, location), chromium_page() as page:
        _lineage_shows_every_group(page, base)
        _settings_show_their_variables_not_values(page, base, location["name"], root)
        _backfill_of_three_days_is_one_run(page, base, graphql)
        _one_partition_launched_succeeds(page, base)
        rows, baseline = _range_launched_through_graphql(graphql, location, root)
        _held_back_date_shows_failed(page, base)
        _failed_check_shows_its_metadata(page, base, rows, baseline)
        # meanwhile the daemon ran the sensors that start RUNNING on the instance's default SQLite storage
        repository = location["locationOrLoadError"]["repositories"][0]["name"]
        selector = {"repositoryLocationName": location["name"], "repositoryName": repository}

        def running_sensor_ticks() -> dict[str, list[dict]] | None:
            sensors = graphql(SENSOR_TICKS, selector=selector)["sensorsOrError"]["results"]
            found = {s["name"]: s["sensorState"]["ticks"] for s in sensors if s["sensorState"]["status"] == "RUNNING"}
            return found if len(found["check_warning_alerts"]) >= 2 else None  # the first only starts its cursor

        ticks = wait_for(running_sensor_ticks, 180, "two ticks of check_warning_alerts", interval=5)
        assert {name: [t["error"] for t in found if t["status"] == "FAILURE"] for name, found in ticks.items()} == {
            name: [] for name in ticks
        }
    migrated = iceberg_rows(root, "migrated", "fact_event_by_day")
    assert migrated.num_rows > 0
    # the webserver's and daemon's logs, the instance's event logs, compute logs and metadata: no secret
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "dagster-dev.log" for p in files) and any(p.suffix == ".db" for p in files)
    assert [str(p) for p in files if b"canary" in _bytes_of(p).lower()] == []


def _bytes_of(path: Path) -> bytes:
    """A file's bytes; nothing for one gone since it was listed (SQLite's -shm and -wal files come and go)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
