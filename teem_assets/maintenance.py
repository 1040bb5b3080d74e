"""Upkeep of one Iceberg table, as Iceberg's maintenance guide has it: compact the small data files of the
partitions written since the last upkeep (binpack), rewrite the manifests once there are too many, expire old
snapshots (and the branches of runs never published), remove orphan files. None of it changes a value: each
rewrite commits as a `replace`, which readers of the table's changes skip (`table_state.data_snapshot_id`).

The table's shape (data files, their average size, manifests, snapshots, metadata bytes) is measured before
and after, from its metadata tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from teem_assets.iceberg import expire_snapshots, retry_conflicts, sweep_orphans_when_due
from teem_assets.table_state import java_table, ref_snapshot_id, table_property

# The data sequence number the last upkeep reached: files written after it are what the next one looks at.
MAINTAINED_THROUGH = "teem.maintained-through-sequence"


@dataclass(frozen=True)
class Thresholds:
    small_file_bytes: int  # a data file smaller than this is small
    small_files: int  # a partition with this many small files is compacted
    manifests: int  # a table with more manifests than this has them rewritten


@dataclass(frozen=True)
class TableShape:
    data_files: int
    average_file_bytes: int
    small_files: int
    manifests: int
    snapshots: int
    metadata_bytes: int  # the current metadata file and every manifest of the current snapshot
    crowded_partitions: list[str]  # partitions holding at least `Thresholds.small_files` small files

    def over(self, thresholds: Thresholds) -> list[str]:
        """What passes the thresholds, one line each; empty when nothing does."""
        found = []
        if self.crowded_partitions:
            named = ", ".join(self.crowded_partitions[:10]) + (", …" if len(self.crowded_partitions) > 10 else "")
            found.append(
                f"{len(self.crowded_partitions)} partitions hold {thresholds.small_files} or more files under "
                f"{thresholds.small_file_bytes} bytes: {named}"
            )
        if self.manifests > thresholds.manifests:
            found.append(f"{self.manifests} manifests, more than {thresholds.manifests}")
        return found


@dataclass
class Upkeep:
    before: TableShape
    after: TableShape | None = None
    compacted_partitions: list[str] = field(default_factory=list)
    data_files_rewritten: int = 0
    data_files_added: int = 0
    manifests_rewritten: int = 0
    snapshots_expired: int = 0
    data_files_deleted: int = 0  # by the expired snapshots: what they alone held
    orphan_files_removed: int = 0


def _metadata_file_bytes(spark: SparkSession, identifier: str) -> int:
    table = java_table(spark, identifier)
    location = table.operations().current().metadataFileLocation()
    return int(table.io().newInputFile(location).getLength())


def table_shape(spark: SparkSession, identifier: str, partition_column: str, thresholds: Thresholds) -> TableShape:
    files = spark.sql(
        f"SELECT count(*) AS files, coalesce(avg(file_size_in_bytes), 0) AS average, "
        f"count_if(file_size_in_bytes < {thresholds.small_file_bytes}) AS small FROM {identifier}.data_files"
    ).first()
    manifests = spark.sql(
        f"SELECT count(*) AS n, coalesce(sum(length), 0) AS bytes FROM {identifier}.manifests"
    ).first()
    snapshots = spark.sql(f"SELECT count(*) AS n FROM {identifier}.snapshots").first()
    crowded = spark.sql(
        f"SELECT CAST(partition.`{partition_column}` AS STRING) AS value FROM {identifier}.data_files "
        f"WHERE file_size_in_bytes < {thresholds.small_file_bytes} GROUP BY 1 "
        f"HAVING count(*) >= {thresholds.small_files} ORDER BY 1"
    ).collect()
    return TableShape(
        data_files=int(files["files"]),
        average_file_bytes=round(float(files["average"])),
        small_files=int(files["small"]),
        manifests=int(manifests["n"]),
        snapshots=int(snapshots["n"]),
        metadata_bytes=int(manifests["bytes"]) + _metadata_file_bytes(spark, identifier),
        crowded_partitions=[row["value"] for row in crowded if row["value"] is not None],
    )


def written_partitions(spark: SparkSession, identifier: str, partition_column: str, after_sequence: int) -> set[str]:
    """The partitions holding a live data file written after data sequence number `after_sequence`."""
    rows = spark.sql(
        f"SELECT DISTINCT CAST(data_file.partition.`{partition_column}` AS STRING) AS value FROM {identifier}.entries "
        f"WHERE status < 2 AND data_file.content = 0 AND sequence_number > {after_sequence}"
    ).collect()
    return {row["value"] for row in rows if row["value"] is not None}


def _procedure(identifier: str, name: str, arguments: str) -> str:
    catalog, relative = identifier.split(".", 1)
    return f"CALL {catalog}.system.{name}(table => '{relative}'{arguments})"


def compact(
    spark: SparkSession, identifier: str, partition_column: str, partitions: list[str], thresholds: Thresholds
) -> tuple[int, int]:
    """Binpack the small files of `partitions` (date values) into files of the table's target size, in one
    `replace` commit; a partition with fewer small files than the threshold is left. Returns the files
    rewritten and added."""
    dates = ", ".join(f"DATE '{dt.date.fromisoformat(p).isoformat()}'" for p in partitions)
    options = {
        "min-input-files": thresholds.small_files,
        "min-file-size-bytes": thresholds.small_file_bytes,  # larger files stay as they are
    }
    pairs = ", ".join(f"'{k}', '{v}'" for k, v in options.items())
    where = f"`{partition_column}` IN ({dates})"
    statement = _procedure(
        identifier, "rewrite_data_files", f", strategy => 'binpack', where => \"{where}\", options => map({pairs})"
    )
    row = retry_conflicts(lambda: spark.sql(statement).first())
    return int(row["rewritten_data_files_count"]), int(row["added_data_files_count"])


def rewrite_manifests(spark: SparkSession, identifier: str) -> int:
    row = retry_conflicts(lambda: spark.sql(_procedure(identifier, "rewrite_manifests", "")).first())
    return int(row["rewritten_manifests_count"])


def _last_sequence(spark: SparkSession, identifier: str) -> int:
    table = java_table(spark, identifier)
    snapshot_id = ref_snapshot_id(table)
    return int(table.snapshot(snapshot_id).sequenceNumber()) if snapshot_id is not None else 0


def maintain(
    spark: SparkSession,
    identifier: str,
    partition_column: str,
    thresholds: Thresholds,
    snapshot_retention: dt.timedelta,
) -> Upkeep:
    """Compact, rewrite manifests, expire, sweep; record how far the table was maintained: to the sequence number
    it had when this began, so that a commit of another run made meanwhile is looked at next time."""
    through = _last_sequence(spark, identifier)
    upkeep = Upkeep(before=table_shape(spark, identifier, partition_column, thresholds))
    since = int(table_property(spark, identifier, MAINTAINED_THROUGH) or 0)
    written = written_partitions(spark, identifier, partition_column, since)
    upkeep.compacted_partitions = sorted(written & set(upkeep.before.crowded_partitions))
    if upkeep.compacted_partitions:
        upkeep.data_files_rewritten, upkeep.data_files_added = compact(
            spark, identifier, partition_column, upkeep.compacted_partitions, thresholds
        )
    if upkeep.before.manifests > thresholds.manifests:
        upkeep.manifests_rewritten = rewrite_manifests(spark, identifier)
    expired = expire_snapshots(spark, identifier, snapshot_retention) or {}
    upkeep.snapshots_expired = int(expired.get("deleted_manifest_lists_count", 0))  # one list a snapshot
    upkeep.data_files_deleted = int(expired.get("deleted_data_files_count", 0))
    upkeep.orphan_files_removed = len(sweep_orphans_when_due(spark, identifier, dt.timedelta(0)) or [])
    retry_conflicts(
        lambda: spark.sql(f"ALTER TABLE {identifier} SET TBLPROPERTIES ('{MAINTAINED_THROUGH}' = '{through}')")
    )
    upkeep.after = table_shape(spark, identifier, partition_column, thresholds)
    return upkeep
