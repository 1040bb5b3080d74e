"""The data root (a folder or `s3://bucket/prefix`) and its Iceberg catalog: the one owner of every path,
read, write and commit of the pipeline's data (DESIGN §12). Spark reads and writes it natively (S3A or EMRFS
for plain files, Iceberg's FileIO for tables), Python through `pyarrow.fs` and pyiceberg: no local mirror, so
a fresh worker, a spark-submit driver and an EMR step compute exactly what a warm Dagster process does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyspark.sql import SparkSession

from teem_assets import converted, layout
from teem_assets.iceberg import (
    CatalogSettings,
    expire_snapshots,
    python_catalog,
    refuse_foreign,
    sweep_orphans_when_due,
    use_catalog,
)
from teem_assets.layout import default_databases
from teem_assets.unload.location import resolve


class MissingTable(Exception):
    """A table a stage reads has never been materialized."""


@dataclass
class DataRoot:
    """`root` is a folder or `s3://bucket/prefix`; an S3 root's tables are registered in AWS Glue."""

    root: str
    migrated_database: str | None = None  # None: the root's own (layout.default_databases)
    aggregates_database: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    # How long a table's old snapshots (and the files only they hold) are kept; the aggregates' changelog
    # reads from the snapshot they were last computed from, so a longer pause recomputes every day once.
    snapshot_retention_days: float = 7.0
    # How often, at most, a table's orphan files (a killed commit's) are swept, after one of its commits.
    orphan_sweep_days: float = 7.0
    # How long a run's staged branch that was never published (its check failed, the run died) is kept.
    staged_retention_days: float = 7.0
    # A service's own endpoint, over aws_endpoint_url (AWS's per-service variables: MinIO has no Glue)
    s3_endpoint_url: str | None = None
    glue_endpoint_url: str | None = None
    # How long the records quarantined (raw, personal data and all) are kept; the upkeep removes them after.
    quarantine_retention_days: float = 30.0

    _catalog: Catalog | None = field(default=None, init=False, repr=False, compare=False)
    _registered_in: SparkSession | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        migrated, aggregates = default_databases(self.root)
        self.migrated_database = self.migrated_database or migrated
        self.aggregates_database = self.aggregates_database or aggregates

    def settings(self) -> dict[str, Any]:
        """What a stage on another machine needs to open the same root (no credentials: AWS's default chain)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def catalog_settings(self) -> CatalogSettings:
        return CatalogSettings(
            self.root.rstrip("/"),
            self.migrated_database,
            self.aggregates_database,
            self.aws_endpoint_url or None,
            self.aws_region or None,
            self.s3_endpoint_url or None,
            self.glue_endpoint_url or None,
        )

    # Unloads and the Parquet layer
    def raw(self, table: str, batch: str) -> str:
        if batch == "snapshot":
            return layout.raw_snapshot(self.root, table)
        return layout.raw_batch(self.root, table, batch)

    def parquet(self, table: str, batch: str) -> str:
        if batch == "snapshot":
            return layout.parquet_snapshot(self.root, table)
        return layout.parquet_batch(self.root, table, batch)

    def quarantine(self, table: str, batch: str) -> str:
        return layout.quarantine(self.root, table, batch)

    def converted(self, table: str, batch: str) -> converted.ConvertedBatch | None:
        return converted.read(self.parquet(table, batch))

    def converted_or_fail(self, table: str, batch: str) -> converted.ConvertedBatch:
        found = self.converted(table, batch)
        if found is None:
            raise MissingTable(f"{self.parquet(table, batch)} holds no converted unload: materialize parquet/{table}")
        return found

    def parquet_table(self, table: str) -> str:
        return layout.parquet_table(self.root, table)

    def converted_dates(self, table: str) -> list[str]:
        return converted.converted_dates(self.parquet_table(table))

    # The Iceberg tables
    def spark_catalog(self, spark: SparkSession) -> str:
        """Register the root's catalog in `spark` (once per session); returns the catalog's name there."""
        if self._registered_in is not spark:
            use_catalog(spark, self.catalog_settings)
            self._registered_in = spark
        return self.catalog_settings.spark_name

    def migrated_table(self, spark: SparkSession, table: str) -> str:
        return f"{self.spark_catalog(spark)}.{self.migrated_database}.{table}"

    def aggregate_table(self, spark: SparkSession, name: str) -> str:
        return f"{self.spark_catalog(spark)}.{self.aggregates_database}.{name}"

    def python_catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = python_catalog(self.catalog_settings)
        return self._catalog

    def iceberg_table(self, database: str, name: str):  # noqa: ANN201 - pyiceberg's Table
        """A table through pyiceberg, or MissingTable naming it; ForeignLocation for one outside the root."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            table = self.python_catalog().load_table((database, name))
        except (NoSuchTableError, NoSuchNamespaceError):
            raise MissingTable(
                f"the Iceberg table {database}.{name} does not exist in the catalog of {self.root}: materialize "
                f"{'migrated' if database == self.migrated_database else 'aggregates'}/{name} first"
            ) from None
        refuse_foreign(f"the table {database}.{name}", table.location(), self.catalog_settings.warehouse)
        return table

    @property
    def staged_retention(self) -> dt.timedelta:
        return dt.timedelta(days=self.staged_retention_days)

    def maintain(self, spark: SparkSession, identifier: str) -> None:
        """After a commit: drop the table's snapshots older than the retention (the newest few always stay) and
        the files only they referenced; when due, remove the files no snapshot references (orphans)."""
        expire_snapshots(spark, identifier, dt.timedelta(days=self.snapshot_retention_days))
        sweep_orphans_when_due(spark, identifier, dt.timedelta(days=self.orphan_sweep_days))

    def remove_expired_quarantine(self, table: str, now: dt.datetime | None = None) -> list[str]:
        """Remove the table's quarantine files written more than `quarantine_retention_days` before `now`;
        returns their paths."""
        cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=self.quarantine_retention_days)
        fs, folder = resolve(layout.quarantine(self.root, table, ""))
        found = fs.get_file_info(pafs.FileSelector(folder.rstrip("/"), recursive=True, allow_not_found=True))
        expired = [i.path for i in found if i.type == pafs.FileType.File and i.mtime is not None and i.mtime < cutoff]
        for path in expired:
            fs.delete_file(path)
        return expired

    def migrated_row_count(self, table: str) -> int | None:
        """Rows of the migrated table's current snapshot, None when the table does not exist yet."""
        try:
            snapshot = self.iceberg_table(self.migrated_database, table).current_snapshot()
        except MissingTable:
            return None
        return int(snapshot.summary["total-records"]) if snapshot else 0
