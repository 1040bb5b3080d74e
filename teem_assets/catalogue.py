"""The table catalogue: the single source of every schema in the project.

Each warehouse table of `teem_edw` (handover/TABLES.md) is one entry: its columns with their Redshift
types, primary key, the created-at column whose date is the `created_date` partition, the updated-at
column that decides the last writer, and how it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from teem_assets.redshift_types import RedshiftType, parse_type

PERSONAL_MASK = "(personal)"  # what previews, logs and metadata show in place of a personal column's value


class LoadMode(Enum):
    """How an unload becomes the current state."""

    SNAPSHOT = "snapshot"  # dimension: each weekly unload is the whole table, replace it
    INCREMENTAL = "incremental"  # fact: each daily unload is a batch to upsert by primary key


@dataclass(frozen=True)
class Column:
    name: str
    type: RedshiftType
    personal: bool = False  # personal data: masked in previews, logs and metadata; kept raw only in quarantine


class RuleKind(Enum):
    NOT_NULL = "not_null"
    UNIQUE = "unique"  # within the unload: a snapshot, a batch
    ACCEPTED = "accepted"  # one of `values`, compared case-insensitively
    PATTERN = "pattern"  # matches the regular expression `pattern` (a search; anchor it to match whole)
    NOT_AFTER_BATCH = "not_after_batch"  # at most `days` after the end of the batch date (a snapshot: of today)


@dataclass(frozen=True)
class Rule:
    """A rule a column's values keep, evaluated while the unload is converted; a rule that `blocks` stops the
    batch at Parquet when a row breaks it, any other warns."""

    kind: RuleKind
    column: str
    blocks: bool = False
    values: tuple[str, ...] = ()
    pattern: str = ""
    days: int = 0

    @property
    def name(self) -> str:
        return f"{self.column}_{self.kind.value}"


@dataclass(frozen=True)
class Columns:
    """A named, ordered set of typed columns: a warehouse table or an aggregate."""

    name: str
    columns: tuple[Column, ...]
    domain: str = field(default="", kw_only=True)  # the business area it belongs to (workplace, bookings, …)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def typed_columns(self) -> list[tuple[str, RedshiftType]]:
        """(name, type) pairs, the form the reader and the Arrow/Spark schema builders take."""
        return [(c.name, c.type) for c in self.columns]

    @property
    def personal_columns(self) -> set[str]:
        return {c.name for c in self.columns if c.personal}

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


@dataclass(frozen=True)
class Table(Columns):
    primary_key: tuple[str, ...]
    created_at: str
    updated_at: str
    load_mode: LoadMode
    company_column: str | None = None  # the company of a fact row, for the companies check
    rules: tuple[Rule, ...] = ()

    @property
    def is_dimension(self) -> bool:
        return self.load_mode is LoadMode.SNAPSHOT


def _table(
    name: str,
    edw: str,
    primary_key: str,
    load_mode: LoadMode,
    domain: str,
    columns: list[tuple[str, str]],
    company_column: str | None = None,
    personal: frozenset[str] = frozenset(),
    rules: tuple[Rule, ...] = (),
) -> Table:
    """Build a table; `edw` is the infix of its audit columns (`edw_<edw>_created_at`, …); `personal` names the
    columns that hold personal data; `rules` come after those every table keeps (`_table_rules`)."""
    built = tuple(Column(n, parse_type(t), personal=n in personal) for n, t in columns)
    updated_at = f"edw_{edw}_updated_at"
    table = Table(
        name=name,
        columns=built,
        primary_key=(primary_key,),
        created_at=f"edw_{edw}_created_at",
        updated_at=f"edw_{edw}_updated_at",
        load_mode=load_mode,
        company_column=company_column,
        domain=domain,
        rules=(*_table_rules(primary_key, updated_at, load_mode), *rules),
    )
    named = [primary_key, table.created_at, table.updated_at, company_column, *personal]
    for required in filter(None, named):
        table.column(required)
    for rule in table.rules:
        _fits(rule, table.column(rule.column))
    return table


def _fits(rule: Rule, column: Column) -> None:
    """A rule on values of text or a time must name a column of that type: a catalogue edit that retypes a
    column and keeps its rule is refused when the catalogue loads, not when an unload is read."""
    text = rule.kind in (RuleKind.ACCEPTED, RuleKind.PATTERN)
    if (text and not column.type.is_text) or (rule.kind is RuleKind.NOT_AFTER_BATCH and not column.type.is_temporal):
        raise ValueError(f"rule {rule.name} does not fit the column {column.name} of type {column.type}")


def _table_rules(primary_key: str, updated_at: str, load_mode: LoadMode) -> list[Rule]:
    """What every table keeps (TABLES.md's likely primary keys, the warehouse's load stamps): a key in every row
    (the migrate stage quarantines a row without one), once per snapshot (the newest row of a key is kept), and
    no row stamped after its batch, which blocks: such a row would win every later update of its key."""
    rules = [Rule(RuleKind.NOT_NULL, primary_key), Rule(RuleKind.NOT_AFTER_BATCH, updated_at, blocks=True, days=1)]
    if load_mode is LoadMode.SNAPSHOT:
        rules.append(Rule(RuleKind.UNIQUE, primary_key))
    return rules


def _audit(edw: str) -> list[tuple[str, str]]:
    return [
        (f"edw_{edw}_process_name", "varchar(256)"),
        (f"edw_{edw}_process_filename", "varchar(1024)"),
        (f"edw_{edw}_job_name", "varchar(256)"),
        (f"edw_{edw}_created_at", "timestamp"),
        (f"edw_{edw}_updated_at", "timestamp"),
    ]


def _scd2(edw: str) -> list[tuple[str, str]]:
    return [
        (f"edw_{edw}_eff_start_at", "timestamp"),
        (f"edw_{edw}_eff_end_at", "timestamp"),
        (f"edw_{edw}_is_current_flag", "boolean"),
    ]


DIM_COMPANY = _table(
    "dim_company",
    "company",
    "company_pk",
    LoadMode.SNAPSHOT,
    "workplace",
    [
        ("company_pk", "int"),
        ("company_id", "int"),
        ("company_name", "varchar(256)"),
        ("company_is_active_flag", "boolean"),
        ("company_desired_util_pct", "int"),
        ("company_include_weekends_flag", "boolean"),
        ("company_exclude_all_day_flag", "boolean"),
        ("company_hours_start", "varchar(16)"),
        ("company_hours_end", "varchar(16)"),
        ("company_daily_operating_hours", "real"),
        ("company_source_created_at", "timestamp"),
        ("company_source_updated_at", "timestamp"),
        ("edw_company_exp_at", "timestamp"),
        ("edw_company_crc_update", "bigint"),
        ("edw_company_crc_insert", "bigint"),
        *_scd2("company"),
        *_audit("company"),
    ],
)

DIM_SPACE = _table(
    "dim_space",
    "space",
    "space_pk",
    LoadMode.SNAPSHOT,
    "workplace",
    [
        ("space_pk", "int"),
        ("space_id", "int"),
        ("space_type", "varchar(64)"),
        ("space_name", "varchar(256)"),
        ("space_current_name", "varchar(256)"),
        ("space_floor_id", "int"),
        ("space_floor_name", "varchar(256)"),
        ("space_building_id", "int"),
        ("space_building_name", "varchar(256)"),
        ("space_campus_id", "int"),
        ("space_campus_name", "varchar(256)"),
        ("space_calendar_is_attached_flag", "boolean"),
        ("space_calendar_uuid", "varchar(64)"),
        ("space_capacity", "int"),
        ("space_timezone", "varchar(64)"),
        ("space_checkin_enabled_flag", "boolean"),
        ("space_source_created_at", "timestamp"),
        ("space_source_updated_at", "timestamp"),
        ("space_source_deleted_at", "timestamp"),
        ("edw_space_company_id", "int"),
        ("edw_space_crc_update", "bigint"),
        ("edw_space_crc_insert", "bigint"),
        *_scd2("space"),
        *_audit("space"),
    ],
)

DIM_CALENDAR = _table(
    "dim_calendar",
    "calendar",
    "calendar_pk",
    LoadMode.SNAPSHOT,
    "calendar",
    [
        ("calendar_pk", "bigint"),
        ("calendar_uuid", "varchar(64)"),
        ("calendar_identifier", "varchar(256)"),
        ("calendar_type", "varchar(32)"),
        ("calendar_web_domain", "varchar(256)"),
        ("calendar_email", "varchar(256)"),
        ("calendar_account_id", "int"),
        ("calendar_name", "varchar(256)"),
        ("calendar_timezone", "varchar(64)"),
        ("calendar_platform", "varchar(64)"),
        ("calendar_platform_version", "varchar(64)"),
        ("calendar_source_created_at", "timestamp"),
        ("calendar_source_updated_at", "timestamp"),
        ("edw_calendar_identifier_is_active_flag", "boolean"),
        ("edw_calendar_source_table", "varchar(128)"),
        ("edw_calendar_company_id", "int"),
        ("edw_calendar_hash_update", "varchar(64)"),
        ("edw_calendar_hash_insert", "varchar(64)"),
        *_scd2("calendar"),
        *_audit("calendar"),
    ],
    # a person's calendar is named after them and addressed by their email, which its identifier often is
    personal=frozenset({"calendar_email", "calendar_name", "calendar_identifier"}),
    rules=(Rule(RuleKind.PATTERN, "calendar_email", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),),
)

# The predecessor declared the display columns as bare `char` (one character in Hive), which cannot hold
# `09/06/2019`; they get lengths that fit their values.
DIM_DATE = _table(
    "dim_date",
    "date",
    "date_pk",
    LoadMode.SNAPSHOT,
    "calendar",
    [
        ("date_pk", "int"),
        ("day_date", "date"),
        ("day_timestamp", "timestamp"),
        ("date_display_mmddyyyy", "char(10)"),
        ("date_display_ddmmyyyy", "char(10)"),
        ("date_display_yyyymm", "char(7)"),
        ("date_display_month_year", "varchar(14)"),
        ("day_of_month_num", "smallint"),
        ("day_of_month_num_with_suffix", "varchar(4)"),
        ("day_name", "varchar(9)"),
        ("day_of_week_num_usa", "smallint"),
        ("day_of_week_num_iso", "smallint"),
        ("day_instance_in_month_ctr", "smallint"),
        ("day_instance_in_year_ctr", "smallint"),
        ("day_of_quarter_num", "smallint"),
        ("day_of_year_num", "smallint"),
        ("month_week_num", "smallint"),
        ("quarter_week_num", "smallint"),
        ("year_week_num", "smallint"),
        ("month_num", "smallint"),
        ("month_name", "varchar(9)"),
        ("quarter_month_num", "smallint"),
        ("quarter_num", "smallint"),
        ("quarter_name", "char(2)"),
        ("year_num", "smallint"),
        ("year_name", "char(6)"),
        ("first_day_of_month", "date"),
        ("last_day_of_month", "date"),
        ("first_day_of_quarter", "date"),
        ("last_day_of_quarter", "date"),
        ("first_day_of_year", "date"),
        ("last_day_of_year", "date"),
        ("is_weekday_flag", "boolean"),
        ("is_holiday_usa_flag", "boolean"),
        ("holiday_name_usa", "varchar(64)"),
        *_audit("date"),
    ],
)

FACT_EVENT_BY_DAY = _table(
    "fact_event_by_day",
    "event_by_day",
    "event_by_day_pk",
    LoadMode.INCREMENTAL,
    "bookings",
    [
        ("event_pk", "bigint"),
        ("space_pk", "int"),
        ("local_date_pk", "int"),
        ("space_calendar_pk", "bigint"),
        ("company_pk", "int"),
        ("local_scheduled_start_time_pk", "int"),
        ("local_scheduled_end_time_pk", "int"),
        ("local_actual_start_time_pk", "int"),
        ("local_actual_end_time_pk", "int"),
        ("timezone_pk", "bigint"),
        ("event_by_day_pk", "bigint"),
        ("event_by_day_checkin_ctr", "smallint"),
        ("event_by_day_cancel_method", "varchar(64)"),
        ("event_by_day_cancelled_at", "timestamp"),
        ("event_by_day_local_scheduled_start_time", "timestamp"),
        ("event_by_day_local_scheduled_end_time", "timestamp"),
        ("event_by_day_local_actual_start_time", "timestamp"),
        ("event_by_day_local_actual_end_time", "timestamp"),
        ("event_by_day_local_series_original_start_time", "timestamp"),
        ("event_by_day_end_early_flag", "boolean"),
        ("event_by_day_recapture_dur", "int"),
        ("event_by_day_platform_url", "varchar(2048)"),
        ("event_by_day_status", "varchar(32)"),
        ("event_by_day_is_private_flag", "boolean"),
        ("event_by_day_is_ad_hoc_flag", "boolean"),
        ("event_by_day_multi_day_flag", "boolean"),
        ("event_by_day_first_day_flag", "boolean"),
        ("event_by_day_last_day_flag", "boolean"),
        ("event_by_day_source_created_at", "timestamp"),
        ("event_by_day_source_updated_at", "timestamp"),
        ("edw_event_by_day_company_id", "int"),
        ("edw_event_by_day_hash_update", "varchar(64)"),
        ("edw_event_by_day_hash_insert", "varchar(64)"),
        *_audit("event_by_day"),
    ],
    personal=frozenset({"event_by_day_platform_url"}),  # a meeting's link lets anyone holding it join
    rules=(Rule(RuleKind.ACCEPTED, "event_by_day_status", values=("confirmed", "tentative", "cancelled")),),
    company_column="edw_event_by_day_company_id",
)

FACT_ATTENDANCE = _table(
    "fact_attendance",
    "attendance",
    "attendance_pk",
    LoadMode.INCREMENTAL,
    "attendance",
    [
        ("event_pk", "bigint"),
        ("calendar_pk", "bigint"),
        ("attendance_pk", "bigint"),
        ("attendance_role", "varchar(32)"),
        ("attendance_status", "varchar(32)"),
        ("edw_attendance_hash_update", "varchar(64)"),
        ("edw_attendance_hash_insert", "varchar(64)"),
        *_audit("attendance"),
    ],
    # the calendar platforms' values, in whatever case they send them (the aggregates compare them lower-cased)
    rules=(
        Rule(RuleKind.ACCEPTED, "attendance_role", values=("required", "optional", "organizer", "room", "resource")),
        Rule(RuleKind.ACCEPTED, "attendance_status", values=("accepted", "tentative", "needsaction", "declined")),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (DIM_COMPANY, DIM_SPACE, DIM_CALENDAR, DIM_DATE, FACT_EVENT_BY_DAY, FACT_ATTENDANCE)
}
DIMENSIONS: list[Table] = [t for t in TABLES.values() if t.is_dimension]
FACTS: list[Table] = [t for t in TABLES.values() if not t.is_dimension]


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the catalogue has {', '.join(TABLES)}") from None
