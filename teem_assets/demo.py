"""`teem demo`: a generated sample, converted to typed Parquet by the Spark reader, on local Spark."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass

from resources.spark import build_spark_session
from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import UnloadOptions, batch_folder, generate_sample, snapshot_folder
from teem_assets.sample.spec import SampleSpec
from teem_assets.unload.spark_reader import read_unload

DEMO_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)


@dataclass(frozen=True)
class ConvertedUnload:
    table: str
    batch: str
    records: int
    rows: int
    malformed: int


def _unloads(root: str) -> list[tuple[str, str, str, str]]:
    """(table, batch, unload folder, parquet folder) for every unload of the demo sample."""
    found = []
    for table in TABLES.values():
        if table.is_dimension:
            found.append((table.name, "snapshot", snapshot_folder(root, table.name), "snapshot"))
        else:
            for day in DEMO_SPEC.batch_dates:
                batch = day.isoformat()
                found.append((table.name, batch, batch_folder(root, table.name, day), f"batch_date={batch}"))
    return found


def run_demo(root: str) -> list[ConvertedUnload]:
    if not os.path.isdir(os.path.join(root, "csv")):
        generate_sample(root, DEMO_SPEC, UnloadOptions())
    spark = build_spark_session("teem-demo")
    converted = []
    for table, batch, folder, partition in _unloads(root):
        columns = [(c.name, c.type) for c in TABLES[table].columns]
        read = read_unload(
            spark,
            folder,
            columns,
            os.path.join(root, "parquet", table, partition),
            os.path.join(root, "quarantine", table, batch),
        )
        converted.append(ConvertedUnload(table, batch, read.records, read.rows, read.malformed))
    return converted


def main(root: str) -> int:
    started = time.monotonic()
    converted = run_demo(root)
    for item in converted:
        counts = f"{item.records:>7} records {item.rows:>7} rows {item.malformed} malformed"
        print(f"{item.table:<18} {item.batch:<10} {counts}")
    total = sum(c.records for c in converted)
    print(f"{len(converted)} unloads, {total} records converted to Parquet under {root}/parquet")
    print(f"in {time.monotonic() - started:.1f} s")
    return 1 if any(c.malformed for c in converted) else 0
