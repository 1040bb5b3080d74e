"""The convert stage: each selected unload to the typed Parquet layer in one Spark job, with the checks that
read what the conversion recorded (snapshot shrink; batch volume and companies)."""

from __future__ import annotations

import logging
from collections import Counter

from pyspark.sql import SparkSession

from teem_assets.catalogue import TABLES, Table
from teem_assets.conversion import Conversion, ConversionRequest, convert
from teem_assets.data_root import DataRoot
from teem_assets.stages.metadata import column_schema, preview
from teem_assets.stages.report import AssetReport, CheckReport, StageReport, json_value, markdown, metadata, path
from teem_assets.stages.request import StageRequest
from teem_assets.verdicts.batches import COMPANIES, VOLUME, missing_companies, volume_verdict
from teem_assets.verdicts.history import BatchHistory
from teem_assets.verdicts.parts import STALE_PARTS
from teem_assets.verdicts.rules import CATALOGUE_RULES
from teem_assets.verdicts.snapshots import SHRINK, shrink_verdict

MALFORMED_LOGGED = 10
log = logging.getLogger("teem.convert")


def asset_key(table: Table) -> str:
    return f"parquet/{table.name}"


def _asset_report(table: Table, done: list[Conversion]) -> AssetReport:
    reasons: Counter[str] = Counter()
    notes = []
    for conversion in done:
        item = conversion.result
        reasons.update(item.malformed_by_reason)
        source = "manifest" if item.unload.manifest else "newest parts by last-modified time"
        ignored = f"; ignored {', '.join(item.unload.ignored)}" if item.unload.ignored else ""
        stale = f"; not read, stale: {', '.join(item.unload.stale)}" if item.unload.stale else ""
        notes.append(f"{conversion.request.batch}: {len(item.unload.parts)} parts from the {source}{ignored}{stale}")
    rows = sum(c.result.rows for c in done)
    first = done[0].request
    return AssetReport(
        asset_key(table),
        metadata(
            **{
                "dagster/column_schema": column_schema(table),
                "dagster/row_count": rows,
                "rows_read": sum(c.result.records for c in done),
                "rows_written": rows,
                "rows_quarantined": sum(c.result.malformed for c in done),
                "quarantined_by_reason": json_value(dict(reasons)),
                "files": sum(len(c.result.unload.parts) for c in done),
                "bytes": sum(c.result.bytes_read for c in done),
                "batches": ", ".join(c.request.batch for c in done),
                "unloads": markdown("\n".join(f"- {n}" for n in notes)),
                "path": path(first.parquet.rsplit("/", 1)[0]),
                "quarantine": path(first.quarantine.rsplit("/", 1)[0]),
                "preview": preview(done[-1].batch.uris, table.personal_columns),
            }
        ),
    )


def _shrink_checks(root: DataRoot, request: StageRequest, done: list[Conversion]) -> list[CheckReport]:
    threshold = float(request.settings.get("snapshot_shrink_threshold", 0.9))
    checks = []
    for item in done:
        key = asset_key(item.request.table)
        if not request.wants(key, SHRINK):
            continue
        verdict = shrink_verdict(item.batch.rows, root.migrated_row_count(item.request.table.name), threshold)
        current = verdict.current_rows if verdict.current_rows is not None else "no table yet"
        checks.append(
            CheckReport(
                key,
                SHRINK,
                verdict.passed,
                metadata(
                    snapshot_rows=verdict.snapshot_rows,
                    current_rows=current,
                    threshold=threshold,
                    verdict=verdict.describe(),
                ),
            )
        )
    return checks


def _batch_checks(root: DataRoot, request: StageRequest, tables: list[Table]) -> list[CheckReport]:
    window = int(request.settings.get("trailing_batches", 7))
    weeks = int(request.settings.get("trailing_weeks", 4))
    threshold = float(request.settings.get("volume_threshold", 0.95))
    checks = []
    for table in tables:
        key, history = asset_key(table), BatchHistory(root.parquet_table(table.name))
        if request.wants(key, VOLUME):
            verdicts = [volume_verdict(history, batch, weeks, threshold) for batch in request.batches]
            short = [v.batch for v in verdicts if not v.passed]
            details = markdown("\n".join(f"- {v.describe()}" for v in verdicts))
            checks.append(
                CheckReport(
                    key,
                    VOLUME,
                    not short,
                    metadata(threshold=threshold, short_batches=", ".join(short) or "none", batches=details),
                    # Blocks the run, a range too: its dates that passed run on their own
                    # (teem_assets.assets.held_back).
                    severity="ERROR",
                )
            )
        if request.wants(key, COMPANIES):
            found = {batch: missing_companies(history, batch, window) for batch in request.batches}
            missing = {batch: [str(c) for c in companies] for batch, companies in found.items() if companies}
            checks.append(
                CheckReport(
                    key,
                    COMPANIES,
                    not missing,
                    metadata(missing_companies=json_value(missing), batches_with_missing_companies=len(missing)),
                    severity="WARN",
                )
            )
    return checks


def _rule_checks(request: StageRequest, tables: list[Table], done: list[Conversion]) -> list[CheckReport]:
    checks = []
    for table in tables:
        key = asset_key(table)
        if not request.wants(key, CATALOGUE_RULES):
            continue
        rows: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        blocks = {rule.name: rule.blocks for rule in table.rules}
        for conversion in (c for c in done if c.request.table is table):
            for outcome in (o for o in conversion.result.rule_outcomes if o.broken):
                rows[outcome.rule.name] += outcome.broken
                examples.setdefault(outcome.rule.name, []).extend(
                    f"{conversion.request.batch}: {e}" for e in outcome.examples
                )
        found = {name: {"rows": n, "blocks": blocks[name], "examples": examples[name]} for name, n in rows.items()}
        blocking = sorted(name for name in found if blocks[name])
        details = metadata(
            rules_checked=", ".join(blocks),
            rules_broken=json_value(found),
            blocking_rules_broken=", ".join(blocking) or "none",
        )
        checks.append(CheckReport(key, CATALOGUE_RULES, not found, details, severity="ERROR" if blocking else "WARN"))
    return checks


def _stale_part_checks(request: StageRequest, tables: list[Table], done: list[Conversion]) -> list[CheckReport]:
    checks = []
    for table in tables:
        key = asset_key(table)
        if not request.wants(key, STALE_PARTS):
            continue
        stale = {c.request.batch: c.result.unload.stale for c in done if c.request.table is table}
        stale = {batch: names for batch, names in stale.items() if names}
        details = metadata(stale_parts=json_value(stale), parts_not_read=sum(len(names) for names in stale.values()))
        checks.append(CheckReport(key, STALE_PARTS, not stale, details, severity="WARN"))
    return checks


def run(spark: SparkSession, root: DataRoot, request: StageRequest) -> StageReport:
    tables = [TABLES[name] for name in request.tables]
    requests = [
        ConversionRequest(t, b, root.raw(t.name, b), root.parquet(t.name, b), root.quarantine(t.name, b))
        for t in tables
        for b in request.batches
    ]
    done = convert(spark, requests)
    for item in done:
        for bad in item.result.malformed_sample[:MALFORMED_LOGGED]:
            log.warning(f"quarantined {bad.describe()}")
    unreadable = {item.request.table.name for item in done if item.batch is None}
    whole = [t for t in tables if t.name not in unreadable]
    report = StageReport([_asset_report(t, [c for c in done if c.request.table is t]) for t in whole])
    if request.batches == ["snapshot"]:
        report.checks = _shrink_checks(root, request, [c for c in done if c.request.table in whole])
    else:
        report.checks = _batch_checks(root, request, whole)
    report.checks += _stale_part_checks(request, whole, done) + _rule_checks(request, whole, done)
    report.failures = [
        f"parquet/{item.request.table.name} {item.request.batch}: {error}"
        for item in done
        for error in item.result.errors
    ]
    return report
