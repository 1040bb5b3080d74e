"""What every asset carries besides its data, where Dagster's UI looks for it: an owner, tags (layer and domain),
a code version, where the data lives (`dagster/table_name`, `dagster/uri`, kinds) and its columns.

A code version is a digest of the asset's catalogue entry and of the code that decides its values (its layer's
modules below), so that the UI marks an asset stale when either changes, and only the assets they decide.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2.extensions

from resources.spark import AUTO, EMR
from teem_assets import layout
from teem_assets.catalogue import Columns, Table
from teem_assets.partitions import batch_partitions
from teem_assets.postgres_urls import server_of
from teem_assets.settings import Settings

OWNERS = ["team:data-engineering"]
PACKAGE = Path(__file__).resolve().parents[1]
# The code that decides each layer's values, relative to teem_assets/ (a folder counts every module in it).
# The catalogue is not here: each asset's own entry is part of its version instead.
LAYER_CODE: dict[str, tuple[str, ...]] = {
    "raw": (),
    "parquet": (
        "unload",
        "stages/convert.py",
        "conversion.py",
        "converted.py",
        "redshift_types.py",
        "spark_types.py",
        "verdicts",
    ),
    "migrated": ("stages/migrate.py", "migration.py", "spark_types.py", "redshift_types.py"),
    "postgres": ("postgres/load.py", "postgres/copy.py", "postgres/ddl.py", "postgres/source.py"),
    "aggregates": (
        "aggregates/compute.py",
        "aggregates/hourly.py",
        "aggregates/inputs.py",
        "aggregates/reference.py",
        "aggregates/scope.py",
        "aggregates/store.py",
        "aggregates/weekly.py",
        "stages/aggregate.py",
    ),
    "postgres_aggregates": ("postgres/aggregates.py", "postgres/copy.py", "postgres/ddl.py"),
    "maintenance": ("maintenance.py", "stages/maintain.py"),
}


def _code_files(layer: str) -> list[Path]:
    files: set[Path] = set()
    for entry in LAYER_CODE[layer]:
        path = PACKAGE / entry
        files.update(path.rglob("*.py") if path.is_dir() else [path])
    return sorted(files)


def _layer_digest(layer: str) -> bytes:
    digest = hashlib.sha256()
    for path in _code_files(layer):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


_LAYER_DIGESTS = {layer: _layer_digest(layer) for layer in LAYER_CODE}


def code_version(layer: str, entry: Columns) -> str:
    """The digest of `entry` (its columns, types, keys and load mode) and of `layer`'s code."""
    return hashlib.sha256(_LAYER_DIGESTS[layer] + repr(entry).encode()).hexdigest()[:16]


def tags(layer: str, entry: Columns) -> dict[str, str]:
    if not entry.domain:
        raise ValueError(f"{entry.name}: the catalogue entry names no domain")
    return {"layer": layer, "domain": entry.domain}


def column_schema(entry: Columns) -> dg.TableSchema:
    keys = entry.primary_key if isinstance(entry, Table) else ()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.type.sql, description="primary key" if c.name in keys else None)
            for c in entry.columns
        ]
    )


@dataclass(frozen=True)
class Placement:
    """Where the assets' data lives and their Spark runs, as their definitions show it: read from the settings
    once, when the definitions are built."""

    root: str  # TEEM_ROOT, a folder or an s3:// prefix
    spark: str | None  # TEEM_SPARK
    environment: str  # TEEM_ENV
    migrated_database: str
    aggregates_database: str
    postgres_uri: str  # the server and database the exports go to, without user or password
    postgres_schema: str
    first_batch_date: str

    @classmethod
    def of(cls, settings: Settings) -> Placement:
        return cls(
            root=settings.root,
            spark=settings.spark,
            environment=settings.environment,
            migrated_database=settings.migrated_database,
            aggregates_database=settings.aggregates_database,
            postgres_uri=_postgres_uri(settings),
            postgres_schema=settings.postgres_schema,
            first_batch_date=settings.first_batch_date,
        )

    @property
    def partitions(self) -> dg.DailyPartitionsDefinition:
        return batch_partitions(self.first_batch_date)

    @property
    def compute_kind(self) -> str:
        """Where the Spark stages run by default: `emr` on TEEM_ENV=aws (auto: EMR for every run but a small one) or
        TEEM_SPARK=emr, else `spark`."""
        where = self.spark or (EMR if self.environment == "aws" else "")
        return "emr" if where == EMR or (where == AUTO and self.environment == "aws") else "spark"

    @property
    def storage_kind(self) -> str:
        return "s3" if self.root.startswith("s3://") else "file"

    @property
    def _root_uri(self) -> str:
        return self.root.rstrip("/") if "://" in self.root else f"file://{os.path.abspath(self.root)}"

    def raw_uri(self, table: Table) -> str:
        folder = layout.raw_snapshot if table.is_dimension else layout.raw_incremental
        return folder(self._root_uri, table.name)

    def parquet_uri(self, table: Table) -> str:
        return layout.parquet_table(self._root_uri, table.name)

    def iceberg_uri(self, database: str, name: str) -> str:
        return layout.iceberg_table(self._root_uri, database, name)

    def postgres_table_name(self, entry: Columns) -> str:
        return f"{self.postgres_schema}.{entry.name}"


def _postgres_uri(settings: Settings) -> str:
    """The PostgreSQL server and database the exports go to, without user or password; the embedded server's
    data folder when none is set."""
    if settings.postgres_url_set:
        return f"postgresql://{settings.postgres_server}"
    if settings.pg_host:
        dsn = psycopg2.extensions.make_dsn(
            host=settings.pg_host, port=settings.pg_port, dbname=settings.pg_database or ""
        )
        return f"postgresql://{server_of(dsn)}"
    return f"file://{settings.home / 'postgres'}"


def conventions(
    placement: Placement,
    layer: str,
    entry: Columns,
    kinds: set[str],
    uri: str,
    table_name: str | None = None,
    daily: bool = True,
    code: str | None = None,
) -> dict[str, object]:
    """The AssetSpec arguments every asset carries: `layer` is its group and tag, `code` the LAYER_CODE entry
    that decides its values (the layer's own by default)."""
    return {
        "group_name": layer,
        "kinds": kinds,
        "owners": OWNERS,
        "tags": tags(layer, entry),
        "code_version": code_version(code or layer, entry),
        "metadata": metadata(entry, uri, table_name, placement.first_batch_date if daily else None),
    }


def metadata(
    entry: Columns, uri: str | None, table_name: str | None, first_batch_date: str | None
) -> dict[str, object]:
    """The definition metadata of one asset: its columns, where it lives and the table name it has there, and
    for a daily asset its first partition."""
    return {
        "dagster/column_schema": column_schema(entry),
        **({"dagster/table_name": table_name} if table_name else {}),
        **({"dagster/uri": uri} if uri else {}),
        **({"first_batch_date": f"{first_batch_date} (TEEM_FIRST_BATCH_DATE)"} if first_batch_date else {}),
    }
