"""One stage of the pipeline as a worker with no memory runs it: a process of its own, the settings from the
environment, the Dagster instance of DAGSTER_HOME, the job's own executor (as `teem run` and the daemon's run
workers use it). argv: an asset selection in Dagster's syntax (or `job:NAME`), then a batch date range or
nothing (the dimensions)."""

from __future__ import annotations

import sys

import dagster as dg

from teem_assets.definitions import build_definitions
from teem_assets.runner import execute, instance


def main() -> int:
    selection, *dates = sys.argv[1:]
    tags = {}
    if dates:
        first, last = dates if len(dates) == 2 else (dates[0], dates[0])
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    if selection.startswith("job:"):
        return 0 if execute(selection[len("job:") :], tags).success else 1
    defs = build_definitions()
    stage = dg.define_asset_job("stage", selection=dg.AssetSelection.from_string(selection))
    job = stage.resolve(asset_graph=defs.resolve_asset_graph())
    result = job.execute_in_process(instance=instance(), tags=tags, raise_on_error=False, resources=defs.resources)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
