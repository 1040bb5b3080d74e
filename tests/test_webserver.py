"""The code location in `dagster dev` (webserver and daemon), driven through the GraphQL API as the UI does."""

from __future__ import annotations

from pathlib import Path

from dagster_helpers import SMALL_SPEC, small_sample
from dagster_ui import dagster_dev, local_env
from servers import wait_for
from tables import iceberg_rows

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
    assetMaterializations(limit: 5) { partition metadataEntries { label ... on IntMetadataEntry { intValue } } }
} } }
"""


def test_materialization_launched_through_graphql(tmp_path: Path, postgres_url: str, pg_schema: str):
    root = small_sample(tmp_path / "root")
    env = local_env(tmp_path, root, postgres_url, pg_schema)
    with dagster_dev(env, tmp_path) as (graphql, location):
        repository = location["locationOrLoadError"]["repositories"][0]
        assert {"snapshot_job", "batch_job", "migration_job"} <= {j["name"] for j in repository["jobs"]}

        day = SMALL_SPEC.start.isoformat()
        params = {
            "selector": {
                "repositoryLocationName": location["name"],
                "repositoryName": repository["name"],
                "jobName": "migration_job",
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
        }
        launched = graphql(LAUNCH, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished() -> str | None:
            status = graphql(STATUS, id=run_id)["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert wait_for(finished, 400, "the run to finish", interval=2) == "SUCCESS"
        asset = graphql(MATERIALIZED, key={"path": ["migrated", "fact_event_by_day"]})["assetOrError"]
        [materialization] = asset["assetMaterializations"]
        assert materialization["partition"] == day
        rows = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
        assert rows["dagster/row_count"] > 0
        asset = graphql(MATERIALIZED, key={"path": ["aggregates", "agg_hourly_space"]})["assetOrError"]
        [materialization] = asset["assetMaterializations"]
        rows = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
        assert rows["rows_in_recomputed_partitions"] > 0
    assert iceberg_rows(root, "migrated", "fact_event_by_day").num_rows > 0
