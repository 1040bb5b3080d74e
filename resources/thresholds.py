"""The checks' thresholds as a resource: their defaults come from the settings (TEEM_*), and the launchpad shows
them and can override them for one run."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from teem_assets.settings import Settings


class CheckThresholds(dg.ConfigurableResource):
    """What the volume, companies, snapshot and freshness checks and the tables' upkeep compare with."""

    volume_threshold: float = Field(
        default=0.95, gt=0, le=1, description="A batch holds at least this share of its baseline, the same "
        "weekday of the trailing weeks (TEEM_VOLUME_THRESHOLD)."
    )  # fmt: skip
    trailing_weeks: int = Field(
        default=4, ge=1, description="Weeks back the volume check looks for its baseline (TEEM_TRAILING_WEEKS)."
    )
    trailing_batches: int = Field(
        default=7, ge=1, description="Earlier batches the companies check compares with (TEEM_TRAILING_BATCHES)."
    )
    snapshot_shrink_threshold: float = Field(
        default=0.9, gt=0, le=1, description="A dimension snapshot holds at least this share of the current "
        "table's rows (TEEM_SNAPSHOT_SHRINK_THRESHOLD)."
    )  # fmt: skip
    freshness_max_age_hours: float = Field(
        default=48.0, gt=0, description="How old the newest migrated batch may be, counted from the end of its "
        "day (TEEM_FRESHNESS_MAX_AGE_HOURS)."
    )  # fmt: skip
    maintenance_small_file_mb: float = Field(
        default=32.0, gt=0, description="A table's data file smaller than this (MiB) is small "
        "(TEEM_MAINTENANCE_SMALL_FILE_MB)."
    )  # fmt: skip
    maintenance_small_files: int = Field(
        default=2, ge=2, description="A partition with this many small files is compacted, and warned about when "
        "it still has them after the upkeep (TEEM_MAINTENANCE_SMALL_FILES)."
    )  # fmt: skip
    maintenance_manifests: int = Field(
        default=32, ge=0, description="A table with more manifests than this has them rewritten "
        "(TEEM_MAINTENANCE_MANIFESTS)."
    )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckThresholds:
        return cls(
            volume_threshold=settings.volume_threshold,
            trailing_weeks=settings.trailing_weeks,
            trailing_batches=settings.trailing_batches,
            snapshot_shrink_threshold=settings.snapshot_shrink_threshold,
            freshness_max_age_hours=settings.freshness_max_age_hours,
            maintenance_small_file_mb=settings.maintenance_small_file_mb,
            maintenance_small_files=settings.maintenance_small_files,
            maintenance_manifests=settings.maintenance_manifests,
        )

    def maintenance(self) -> dict[str, int]:
        """The upkeep's thresholds, as `teem_assets.maintenance.Thresholds` takes them."""
        return {
            "small_file_bytes": round(self.maintenance_small_file_mb * 2**20),
            "small_files": self.maintenance_small_files,
            "manifests": self.maintenance_manifests,
        }
