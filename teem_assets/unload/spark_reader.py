"""The UNLOAD reader in Spark: the parts are spread over the application's cores; each task decodes its part
with the compiled scanner and writes the Parquet itself, so no row passes through the JVM until it is read
back. Any number of unloads (tables, batches) are converted in one go.

On a cluster the tasks are a Spark job's. Under a local master the executors are this machine's cores
anyway, so the tasks run on threads of the driver's own Python process (the scanner and pyarrow release the
GIL): the same `convert_part`, without starting Python workers that import everything again (1.3 s before
the first task and 0.5 s of imports per worker, measured on 2 cores) or a Spark task's overhead per part.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from teem_assets.spark_types import spark_schema
from teem_assets.unload.convert import PARQUET_OPTIONS, PartResult, convert_part
from teem_assets.unload.decode import Columns, DecodeOptions, Malformed, arrow_schema
from teem_assets.unload.location import REQUEST_THREADS, join, resolve
from teem_assets.unload.parts import Part, UnloadError, UnloadParts, find_parts
from teem_assets.unload.rules import RuleOutcome, RuleSet, RuleTally, outcomes

EMPTY_OUTPUT = "empty.parquet"


@dataclass(frozen=True)
class UnloadConversion:
    """One unload to convert: where it is, its columns, where its Parquet and quarantine go."""

    location: str
    columns: Columns
    out_dir: str
    quarantine_dir: str
    options: DecodeOptions = DecodeOptions()
    rules: RuleSet | None = None


@dataclass
class ConvertedUnload:
    """What became of every record of one unload."""

    conversion: UnloadConversion
    unload: UnloadParts
    results: list[PartResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # unreadable parts, a bad manifest: nothing of it is kept

    @property
    def records(self) -> int:
        return sum(r.records for r in self.results)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def malformed(self) -> int:
        return sum(r.malformed for r in self.results)

    @property
    def bytes_read(self) -> int:
        return sum(r.bytes_read for r in self.results)

    @property
    def malformed_by_reason(self) -> dict[str, int]:
        reasons: Counter[str] = Counter()
        for result in self.results:
            reasons.update(result.malformed_by_reason)
        return dict(reasons)

    @functools.cached_property
    def rule_outcomes(self) -> list[RuleOutcome]:
        """Read once the conversion is done (its pointer and its check both ask)."""
        if self.conversion.rules is None:
            return []
        tally = RuleTally()
        for result in self.results:
            tally.merge(result.rules)
        return outcomes(tally, self.conversion.rules)

    @property
    def malformed_sample(self) -> list[Malformed]:
        return [m for r in self.results for m in r.malformed_sample]


@dataclass
class UnloadRead(ConvertedUnload):
    """A converted unload with its rows as a DataFrame."""

    dataframe: DataFrame | None = None


Task = tuple[int, Part]  # the index of its unload, the part
TaskOutcome = tuple[int, PartResult | None, str | None]


def _convert_task(item: Task, conversions: list[UnloadConversion]) -> TaskOutcome:
    """One part's conversion, or the reason it cannot be read: one bad part stops its own unload only."""
    index, part = item
    conversion = conversions[index]
    try:
        result = convert_part(
            part,
            conversion.columns,
            conversion.out_dir,
            conversion.quarantine_dir,
            conversion.options,
            rules=conversion.rules,
        )
    except UnloadError as error:
        return index, None, str(error)
    return index, result, None


def _find_parts(location: str) -> tuple[UnloadParts, str | None]:
    try:
        return find_parts(location), None
    except UnloadError as error:
        return UnloadParts([]), str(error)


def _clear(location: str) -> None:
    fs, path = resolve(location)
    fs.create_dir(path, recursive=True)
    fs.delete_dir_contents(path, missing_dir_ok=True)


def _write_empty(conversion: UnloadConversion) -> None:
    fs, path = resolve(join(conversion.out_dir, EMPTY_OUTPUT))
    with fs.open_output_stream(path) as sink:
        pq.write_table(arrow_schema(conversion.columns).empty_table(), sink, **PARQUET_OPTIONS)


def _prepared(conversion: UnloadConversion) -> ConvertedUnload:
    """The unload's parts found, its output and quarantine folders emptied (an empty Parquet file written when
    it has no parts)."""
    unload, error = _find_parts(conversion.location)
    _clear(conversion.out_dir)
    _clear(conversion.quarantine_dir)
    if not unload.parts:
        _write_empty(conversion)
    return ConvertedUnload(conversion, unload, errors=[error] if error else [])


def _run_tasks(spark: SparkSession, run: Callable[[Task], TaskOutcome], tasks: list[Task]) -> list[TaskOutcome]:
    """Run the tasks in the given order over the application's cores: threads here under a local master,
    one Spark task each on a cluster."""
    context = spark.sparkContext
    if context.master.startswith("local"):
        with ThreadPoolExecutor(max_workers=context.defaultParallelism, thread_name_prefix="unload") as pool:
            return list(pool.map(run, tasks))
    return context.parallelize(tasks, len(tasks)).map(run).collect()


def convert_unloads(spark: SparkSession, conversions: list[UnloadConversion]) -> list[ConvertedUnload]:
    """Convert every part of every unload in one Spark job, a task a part, largest first.

    Each output and quarantine folder is emptied first; an unload without parts gets an empty Parquet
    file, so that its folder always reads as a table with the right schema. An unload that cannot be read
    (a part, its manifest) comes back with its errors, and the others convert all the same.
    """
    with ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="unload-prepare") as pool:
        converted = list(pool.map(_prepared, conversions))
    tasks = sorted(
        ((i, part) for i, item in enumerate(converted) for part in item.unload.parts),
        key=lambda task: task[1].size,
        reverse=True,
    )
    if tasks:
        run = functools.partial(_convert_task, conversions=list(conversions))
        for index, result, error in _run_tasks(spark, run, tasks):
            if error is not None:
                converted[index].errors.append(error)
            else:
                converted[index].results.append(result)
    for item in converted:
        item.results.sort(key=lambda r: r.part)
    return converted


def read_unload(
    spark: SparkSession,
    location: str,
    columns: Columns,
    out_dir: str,
    quarantine_dir: str,
    options: DecodeOptions = DecodeOptions(),
) -> UnloadRead:
    """Read the unload at `location` (a part, a folder of parts, or a manifest) into typed Parquet."""
    conversion = UnloadConversion(location, columns, out_dir, quarantine_dir, options)
    [converted] = convert_unloads(spark, [conversion])
    if converted.errors:
        raise UnloadError("; ".join(converted.errors))
    dataframe = spark.read.schema(spark_schema(columns)).parquet(out_dir)
    return UnloadRead(conversion, converted.unload, converted.results, converted.errors, dataframe=dataframe)
