"""The batch dates of a run that the volume check holds back: in a range, a short date waits (its check failed,
as a warning naming it) while the others migrate and export; it goes on when its complete unload is run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.catalogue import FACTS
from teem_assets.verdicts.batches import short_batches


def admitted_batches(
    context: dg.AssetExecutionContext, storage: StorageResource, thresholds: CheckThresholds
) -> tuple[list[str], list[str]]:
    """The run's batch dates that every fact table's volume check passes, and the dates held back."""
    batches = list(context.partition_keys)
    folders = [storage.data.parquet_table(table.name) for table in FACTS]
    held = short_batches(folders, batches, thresholds.trailing_weeks, thresholds.volume_threshold)
    admitted = [b for b in batches if b not in held]
    if not admitted:
        raise dg.Failure(
            description=f"every batch of the run is short (volume check): {', '.join(held)}; run each again once "
            "its unload is complete, or with the volume threshold lowered if the volume is real "
            "(TEEM_VOLUME_THRESHOLD, or the run's `thresholds` resource config)",
            allow_retries=False,
        )
    if held:
        context.log.warning(f"held back, short (volume check): {', '.join(held)}; the other dates go on")
    return admitted, held


def noting_held_back(results: Iterable[object], held: list[str]) -> Iterator[object]:
    """The step's results, each materialization naming the dates it held back."""
    for result in results:
        if held and isinstance(result, dg.MaterializeResult):
            metadata = {**(result.metadata or {}), "held_back_batches": ", ".join(held)}
            result = dg.MaterializeResult(
                asset_key=result.asset_key,
                metadata=metadata,
                check_results=result.check_results,
                data_version=result.data_version,
                tags=result.tags,
            )
        yield result
