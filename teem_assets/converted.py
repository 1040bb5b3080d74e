"""The Parquet layer's batches (DESIGN §2): each conversion of an unload writes a new attempt folder, then one
small pointer file (`_batch.json`, a single atomic PUT on S3, a rename locally) names it, with the batch's
statistics (rows, quarantined records, companies). Readers go through the pointer, so they see the previous
conversion or the new one whole, never half of one, on a folder or on S3 alike; the checks read the
statistics, never the old batches' rows.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field

import pyarrow.fs as pafs

from teem_assets.unload.location import join, resolve

POINTER = "_batch.json"
ATTEMPT_PREFIX = "attempt-"
KEEP_ATTEMPTS = 2  # the current one, and the one a reader that started earlier may still be reading
# An attempt no pointer names is removed only once it is this old: until then a conversion running beside this
# one (another run of the same batch, from another instance whose pools do not hold this one) may still be
# writing into it. No run lasts that long (TEEM_MAX_RUNTIME_SECONDS, 6 hours by default, ends it before).
ATTEMPT_RETENTION = dt.timedelta(hours=24)
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class ConvertedBatch:
    """What a pointer says of one converted unload."""

    folder: str  # parquet/<table>/batch_date=<D> or parquet/<table>/snapshot
    attempt: str
    files: list[str]
    rows: int
    quarantined: int
    quarantine: str
    companies: list[int] = field(default_factory=list)
    # The catalogue's blocking rules its rows broke: the migrate stage refuses it, whoever runs it.
    blocked: list[str] = field(default_factory=list)

    @property
    def uris(self) -> list[str]:
        return [join(self.folder, self.attempt, name) for name in self.files]


class EmptyPointerError(RuntimeError):
    """A pointer would name no files for a batch with rows: its attempt was removed or never written."""


def new_attempt(now: dt.datetime | None = None) -> str:
    """An attempt folder's name: when it was begun (UTC), then a random part."""
    begun = (now or dt.datetime.now(dt.UTC)).strftime(_STAMP)
    return f"{ATTEMPT_PREFIX}{begun}-{uuid.uuid4().hex[:12]}"


def attempt_begun(name: str) -> dt.datetime | None:
    """When an attempt was begun, from its name; None for a name without a time (older versions')."""
    stamp = name[len(ATTEMPT_PREFIX) :].split("-")[0]
    try:
        return dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _write_atomically(uri: str, text: str) -> None:
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        temporary = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_output_stream(temporary) as sink:
            sink.write(text.encode())
        fs.move(temporary, path)  # rename(2): atomic
        return
    with fs.open_output_stream(path) as sink:  # one PUT: atomic on S3
        sink.write(text.encode())


def files_of(folder: str, attempt: str) -> list[str]:
    fs, path = resolve(join(folder, attempt))
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet"))


def commit(batch: ConvertedBatch, now: dt.datetime | None = None) -> None:
    """Point the batch at its new attempt, then remove the attempts no conversion can still own (neither it nor
    the one before it, and begun more than ATTEMPT_RETENTION ago). A pointer naming no files for a batch with
    rows is refused: the batch would pass every check and reach no table."""
    if batch.rows > 0 and not batch.files:
        raise EmptyPointerError(
            f"{join(batch.folder, batch.attempt)}: no Parquet file for {batch.rows} rows; nothing was published"
        )
    previous = read(batch.folder)
    _write_atomically(join(batch.folder, POINTER), json.dumps(asdict(batch), indent=1))
    remove_stale_attempts(batch.folder, {batch.attempt} | ({previous.attempt} if previous else set()), now)


def remove_stale_attempts(folder: str, keep: set[str], now: dt.datetime | None = None) -> list[str]:
    """Remove the attempt folders of `folder` not in `keep` and begun more than ATTEMPT_RETENTION before `now`
    (what killed or concurrent conversions left); returns their names."""
    oldest_kept = (now or dt.datetime.now(dt.UTC)) - ATTEMPT_RETENTION
    fs, path = resolve(folder)
    removed = []
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type != pafs.FileType.Directory or not info.base_name.startswith(ATTEMPT_PREFIX):
            continue
        begun = attempt_begun(info.base_name)
        if info.base_name not in keep and (begun is None or begun < oldest_kept):
            fs.delete_dir(info.path)
            removed.append(info.base_name)
    return removed


def read(folder: str) -> ConvertedBatch | None:
    """The batch's current conversion, or None when it was never converted."""
    fs, path = resolve(join(folder, POINTER))
    try:
        with fs.open_input_stream(path) as stream:
            document = json.loads(stream.read())
    except FileNotFoundError:
        return None
    return ConvertedBatch(**document)


def converted_dates(table_folder: str, prefix: str = "batch_date=") -> list[str]:
    """Batch dates with a folder under parquet/<table>/, oldest first (`read` says whether one was converted)."""
    fs, path = resolve(table_folder)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(i.base_name[len(prefix) :] for i in infos if i.base_name.startswith(prefix))
