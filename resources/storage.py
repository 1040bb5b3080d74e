"""The data root as a Dagster resource: its settings are fields (the launchpad shows them); every path,
read, write and commit is `teem_assets.data_root.DataRoot`'s, which the stages use on any machine."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from teem_assets.data_root import DataRoot, MissingTable

__all__ = ["MissingTable", "StorageResource"]


class StorageResource(dg.ConfigurableResource):
    """`root` is a folder or `s3://bucket/prefix`; an S3 root's tables are registered in AWS Glue."""

    root: str
    migrated_database: str | None = None  # None: the root's own (`teem_assets.layout.default_databases`)
    aggregates_database: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    snapshot_retention_days: float = 7.0
    orphan_sweep_days: float = 7.0
    staged_retention_days: float = 7.0
    quarantine_retention_days: float = 30.0
    s3_endpoint_url: str | None = None  # over aws_endpoint_url for S3 alone (AWS_ENDPOINT_URL_S3)
    glue_endpoint_url: str | None = None  # and for Glue (AWS_ENDPOINT_URL_GLUE)

    _data: DataRoot | None = PrivateAttr(default=None)

    @property
    def data(self) -> DataRoot:
        """The root's paths and tables (one object per resource, so its catalogs are opened once)."""
        if self._data is None:
            self._data = DataRoot(
                self.root,
                self.migrated_database,
                self.aggregates_database,
                self.aws_endpoint_url or None,
                self.aws_region or None,
                self.snapshot_retention_days,
                self.orphan_sweep_days,
                self.staged_retention_days,
                s3_endpoint_url=self.s3_endpoint_url or None,
                glue_endpoint_url=self.glue_endpoint_url or None,
                quarantine_retention_days=self.quarantine_retention_days,
            )
        return self._data
