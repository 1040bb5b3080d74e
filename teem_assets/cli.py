"""The `teem` command."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from teem_assets.catalogue import TABLES
from teem_assets.redshift_types import TypeSpecError, parse_columns_spec
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import DEFAULT_MAX_FILE_SIZE
from teem_assets.settings import SettingError, Settings, adopt_for_this_command, load
from teem_assets.unload.convert import decode_part
from teem_assets.unload.decode import Columns, DecodeOptions
from teem_assets.unload.jsonl import json_lines
from teem_assets.unload.parts import UnloadError, find_parts


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _moment(text: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a timestamp (YYYY-MM-DDTHH:MM:SS+00:00)") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: say which time zone it is in (+00:00: UTC)")
    return moment.isoformat()


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return value


def _unload_dates(root: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The dates of first..last with an incremental unload of any fact table under `root`."""
    from pyarrow.fs import FileType

    from teem_assets.catalogue import FACTS
    from teem_assets.layout import raw_batch
    from teem_assets.unload.location import resolve

    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    found = []
    for day in days:
        for table in FACTS:
            filesystem, path = resolve(raw_batch(root, table.name, day))
            if filesystem.get_file_info(path).type == FileType.Directory:
                found.append(day)
                break
    return found


def _sample_unload(args: argparse.Namespace) -> int:
    spec = SampleSpec(start=args.start, days=args.days, seed=args.seed, scale=args.scale, plain_text=args.plain_text)
    options = UnloadOptions(
        slices=args.slices, max_file_size=args.max_file_size, gzip=args.gzip, manifest=args.manifest
    )
    written = generate_sample(args.out, spec, options)
    for item in written:
        print(f"{item.table:<18} {item.batch:<10} {item.files:>3} files {item.records:>9} records  {item.folder}")
    print(f"{sum(w.records for w in written)} records in {sum(w.files for w in written)} files under {args.out}")
    return 0


def _columns(args: argparse.Namespace) -> Columns:
    if args.table:
        return TABLES[args.table].typed_columns
    return parse_columns_spec(args.columns)


def _check_unload(args: argparse.Namespace) -> int:
    try:
        columns = _columns(args)
        unload = find_parts(args.path)
    except (TypeSpecError, UnloadError) as error:
        print(f"teem check-unload: {error}", file=sys.stderr)
        return 2
    report = sys.stderr if args.jsonl else sys.stdout
    options = DecodeOptions(escaped_null=args.escaped_null)
    records = rows = malformed = 0
    for note in unload.ignored:
        print(f"ignored: {note}", file=report)
    for name in unload.stale:
        print(f"ignored: {name} (stale: older than the newest unload)", file=report)
    for part in unload.parts:
        part_records = part_malformed = 0
        try:
            chunks = list(decode_part(part, columns, options))
        except UnloadError as error:
            print(f"teem check-unload: {error}", file=sys.stderr)
            return 2
        for chunk, _ in chunks:
            part_records += chunk.records
            rows += chunk.table.num_rows
            part_malformed += len(chunk.malformed)
            for bad in chunk.malformed:
                print(f"malformed: {bad.describe()}", file=report)
            if args.jsonl:
                for line in json_lines(chunk.table):
                    print(line)
        print(f"file: {part.uri}: {part_records} records, {part_malformed} malformed", file=report)
        records += part_records
        malformed += part_malformed
    print(f"{len(unload.parts)} files, {records} records, {rows} rows, {malformed} malformed", file=report)
    return 1 if malformed else 0


def _demo(args: argparse.Namespace) -> int:
    if args.root:
        adopt_for_this_command("TEEM_ROOT", args.root)
    from teem_assets.demo import run_demo

    return run_demo(load().root)


ARCHIVE_SAMPLE = SampleSpec(start=dt.date(2019, 9, 1), days=2, seed=7)


def _class_archive(args: argparse.Namespace) -> int:
    """Build the local Spark driver's class archive from a whole run (every layer, the embedded PostgreSQL) of a
    two-day sample in a folder of its own, which is removed after."""
    import tempfile

    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from teem_assets.class_archive import build_archive
    from teem_assets.definitions import build_definitions

    with tempfile.TemporaryDirectory(prefix="teem-class-archive-") as folder:
        work = Path(folder)
        settings = Settings(home=work / "home", root=str(work / "root"))  # the defaults: local, embedded PostgreSQL
        generate_sample(settings.root, ARCHIVE_SAMPLE, UnloadOptions())
        first, last = (d.isoformat() for d in (ARCHIVE_SAMPLE.start, ARCHIVE_SAMPLE.end))

        def run_every_layer() -> None:
            tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
            job = build_definitions(settings).resolve_job_def("migration_job")
            result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags, raise_on_error=False)
            if not result.success:
                raise RuntimeError(f"teem class-archive: the sample's run failed: {result.get_run_failure_event()}")

        archive = build_archive(run_every_layer, work)
    print(f"{archive}: {archive.stat().st_size // 2**20} MB")
    return 0


def _run(args: argparse.Namespace) -> int:
    from teem_assets.demo import run_in_terminal

    if args.last < args.first:
        print(f"teem run: --to {args.last} is before --from {args.first}", file=sys.stderr)
        return 2
    root = load().root
    if not _unload_dates(root, args.first, args.last):
        print(
            f"teem run: no unload of any fact table for {args.first}..{args.last} under {root}/csv "
            "(TEEM_ROOT): write or copy the unloads there first",
            file=sys.stderr,
        )
        return 2
    return run_in_terminal(args.first, args.last)


def _runs(args: argparse.Namespace) -> int:
    from jobs.dead_runs import end_dead_runs
    from jobs.run_list import HEADER, run_lines
    from teem_assets.runner import instance

    for item in end_dead_runs(instance(), load().run_heartbeat_timeout_seconds):
        print(f"ended run {item.run_id}: {item.why}; its pool slots were freed")
    print(HEADER)
    for line in run_lines(instance(), args.limit):
        print(line)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from teem_assets.runner import execute

    config = {"batch": args.batch.isoformat() if args.batch else "", "to": args.to or ""}
    run_config = {
        "ops": {"roll_back_tables": {"config": config}},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }
    result = execute("rollback_job", {}, run_config=run_config)
    if not result.success:
        failure = result.get_run_failure_event()
        print(f"teem rollback: {failure.message if failure else 'failed'}", file=sys.stderr)
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data.error:
                print(f"teem rollback: {event.step_failure_data.error.message.strip()}", file=sys.stderr)
        return 1
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            observation = event.asset_observation_data.asset_observation
            values = {k: v.value for k, v in observation.metadata.items()}
            print(f"{observation.asset_key.to_user_string():<32} {values}")
    output = next(e for e in result.all_events if e.is_successful_output)
    for name, value in output.step_output_data.metadata.items():
        print(f"{name}: {value.value}")
    print(f"run {result.run_id}: run the undone batches again, corrected, to publish them")
    return 0


def _table(args: argparse.Namespace) -> int:
    import dagster as dg

    from resources.storage import MissingTable
    from teem_assets.definitions import storage_from_settings
    from teem_assets.show_table import default_layer, table_rows

    layer = args.layer or default_layer(args.name)
    postgres = None
    if layer == "postgres":
        from resources.postgres import PostgresResource

        postgres = PostgresResource.from_settings(load()).process_config_and_initialize()  # EnvVars resolved
    try:
        storage = storage_from_settings(load()).process_config_and_initialize()  # EnvVars resolved
        rows = table_rows(storage, postgres, args.name, layer)
    except MissingTable as error:
        print(f"teem table: {error}", file=sys.stderr)
        return 2
    except dg.Failure as failure:  # settings that cannot work, e.g. a wrong PostgreSQL password
        print(f"teem table: {failure.description}", file=sys.stderr)
        return 2
    if args.jsonl:
        for line in json_lines(rows):
            print(line)
        return 0
    print(f"{layer}/{args.name}: {rows.num_rows} rows")
    if rows.num_rows:
        print(rows.slice(0, args.preview).to_pandas().to_string(index=False, max_colwidth=24))
    return 0


def _package(args: argparse.Namespace) -> int:
    from teem_assets.packaging import build_archive, upload

    if args.target == "emr-serverless":
        return _package_for_serverless(args)
    archive = build_archive(Path(args.out), arch=args.arch, python_version=args.python_version)
    print(f"{archive.path}: {archive.size / 2**20:.1f} MiB, {len(archive.wheels)} wheels, {archive.seconds:.0f} s")
    for uri in upload(archive.path, args.upload) if args.upload else []:
        print(f"uploaded {uri}")
    if args.upload:
        print(f"set TEEM_EMR_ARCHIVE_URI={args.upload}")
    return 0


def _package_for_serverless(args: argparse.Namespace) -> int:
    from teem_assets.packaging import upload
    from teem_assets.serverless_environment import BESIDE, UnfitEnvironmentError, build_environment

    try:
        built = build_environment(Path(args.out))
    except UnfitEnvironmentError as error:
        print(f"teem package: {error}", file=sys.stderr)
        return 2
    glibc = ".".join(map(str, built.glibc))
    print(f"{built.path}: {built.size / 2**20:.1f} MiB, needs glibc {glibc}, {built.seconds:.0f} s")
    for uri in upload(built.path, args.upload, BESIDE) if args.upload else []:
        print(f"uploaded {uri}")
    if args.upload:
        print(f"set TEEM_EMR_SERVERLESS_ARCHIVE_URI={args.upload}")
    return 0


def _iam_policy(args: argparse.Namespace) -> int:
    import json

    import boto3

    from resources.emr import EmrResource
    from resources.emr_serverless import EmrServerlessResource
    from resources.iam_policy import policies

    settings = load()
    where = settings.spark or ("in-process" if settings.environment == "local" else "auto")
    where = settings.spark_auto_cluster if where == "auto" else where
    if where not in ("emr", "emr-serverless") or not settings.root.startswith("s3://"):
        print("teem iam-policy: the policies are for an S3 root (TEEM_ROOT) with TEEM_SPARK emr, emr-serverless or "
              f"auto; here TEEM_ROOT is {settings.root} and Spark runs {where}", file=sys.stderr)  # fmt: skip
        return 2
    session = boto3.session.Session(region_name=settings.aws_region)
    region = session.region_name or "us-east-1"
    account = args.account or session.client("sts").get_caller_identity()["Account"]
    emr, serverless = EmrResource(**settings.emr), EmrServerlessResource(**settings.emr_serverless)
    databases = [settings.migrated_database, settings.aggregates_database]
    print(json.dumps(policies(where, settings.root, databases, emr, serverless, region, account), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teem", description="TEEM's Redshift-to-Dagster pipelines")
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("sample-unload", help="write a realistic sample of TEEM unloads")
    sample.add_argument("--out", required=True, help="root folder to write csv/<table>/… under")
    sample.add_argument("--start", type=_date, default=dt.date(2019, 9, 1))
    sample.add_argument("--days", type=_at_least_one, default=14)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--scale", type=_at_least_one, default=1, help="multiplies companies, spaces and events")
    sample.add_argument("--slices", type=int, default=2, help="Redshift slices: one file series each")
    sample.add_argument("--max-file-size", type=int, default=DEFAULT_MAX_FILE_SIZE, help="bytes before _part_NN+1")
    sample.add_argument("--gzip", action="store_true", help="gzip every part (.gz)")
    sample.add_argument("--manifest", action="store_true", help="write a MANIFEST VERBOSE file per unload")
    sample.add_argument("--plain-text", action="store_true", help="text values without characters to escape")
    sample.set_defaults(run=_sample_unload)

    check = commands.add_parser("check-unload", help="decode an unload and report malformed records")
    check.add_argument("path", help="a part file, a folder of parts, or a manifest")
    schema = check.add_mutually_exclusive_group(required=True)
    schema.add_argument("--table", choices=sorted(TABLES), help="take the columns from the catalogue")
    schema.add_argument("--columns", help="NAME:TYPE,… with Redshift types, e.g. id:bigint,amount:decimal(12,2)")
    check.add_argument("--jsonl", action="store_true", help="print each decoded row as JSON on stdout, only that")
    check.add_argument("--escaped-null", choices=["null", "string", "error"], default="null")
    check.set_defaults(run=_check_unload)

    demo = commands.add_parser("demo", help="generate the sample (once) and run every layer for all its dates")
    demo.add_argument("--root", help="data root (default: TEEM_ROOT, else .teem/root)")
    demo.set_defaults(run=_demo)

    run = commands.add_parser("run", help="materialize every layer for a range of batch dates, in one run")
    run.add_argument("--from", dest="first", type=_date, required=True, help="first batch date")
    run.add_argument("--to", dest="last", type=_date, required=True, help="last batch date")
    run.set_defaults(run=_run)

    archive = commands.add_parser(
        "class-archive", help="build the local Spark driver's class archive from a run of a small sample (dev.sh)"
    )
    archive.set_defaults(run=_class_archive)

    runs = commands.add_parser("runs", help="the instance's runs: status, batch dates, pools held, why a run ended")
    runs.add_argument("--limit", type=int, default=20, help="how many of the newest runs (default: 20)")
    runs.set_defaults(run=_runs)

    rollback = commands.add_parser("rollback", help="undo a batch's publications, or every one after a moment")
    undo = rollback.add_mutually_exclusive_group(required=True)
    undo.add_argument("--batch", type=_date, help="the batch date whose runs are undone")
    undo.add_argument("--to", type=_moment, help="a moment with its UTC offset, e.g. 2019-09-03T08:00:00+00:00")
    rollback.set_defaults(run=_rollback)

    table = commands.add_parser("table", help="a table's row count and first rows, or every row as JSON lines")
    table.add_argument("name", help="a catalogue table or an aggregate")
    table.add_argument("--layer", choices=["parquet", "migrated", "aggregates", "postgres"])
    table.add_argument("--jsonl", action="store_true", help="every current row as JSON on stdout, only that")
    table.add_argument("--preview", type=int, default=10, help="rows shown without --jsonl")
    table.set_defaults(run=_table)

    package = commands.add_parser("package", help="build (and upload) the archive EMR installs or unpacks")
    package.add_argument(
        "--target",
        choices=["emr", "emr-serverless"],
        default="emr",
        help="emr: wheels a cluster's bootstrap installs; emr-serverless: this machine's Python and the packages, "
        "relocatable (build on the CPU the application runs on)",
    )
    package.add_argument("--out", default="dist", help="folder for the archive (default: dist)")
    package.add_argument("--upload", metavar="S3_URI", help="put it there, its bootstrap script beside it")
    package.add_argument(
        "--arch", choices=["x86_64", "aarch64"], default="x86_64", help="the nodes' CPU (Graviton: aarch64)"
    )
    package.add_argument("--python-version", default="3.11", help="the Python the bootstrap action installs (emr)")
    package.set_defaults(run=_package)

    policy = commands.add_parser("iam-policy", help="print the least-privilege IAM policies for these settings")
    policy.add_argument("--account", help="the AWS account's id (default: the caller's, from STS)")
    policy.set_defaults(run=_iam_policy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load()  # every setting checked before anything runs
        return int(args.run(args))
    except SettingError as error:
        print(f"teem: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
