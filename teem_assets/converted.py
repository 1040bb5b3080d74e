"""The Parquet layer's batches (DESIGN §2): each conversion of an unload writes a new attempt folder, then one
small pointer file (`_batch.json`, a single atomic PUT on S3, a rename locally) names it, with the batch's
statistics (rows, quarantined records, companies). Readers go through the pointer, so they see the previous
conversion or the new one whole, never half of one, on a folder or on S3 alike; the checks read the
statistics, never the old batches' rows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field

import pyarrow.fs as pafs

from teem_assets.unload.location import join, resolve

POINTER = "_batch.json"
ATTEMPT_PREFIX = "attempt-"
KEEP_ATTEMPTS = 2  # the current one, and the one a reader that started earlier may still be reading


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

    @property
    def uris(self) -> list[str]:
        return [join(self.folder, self.attempt, name) for name in self.files]


def new_attempt() -> str:
    return f"{ATTEMPT_PREFIX}{uuid.uuid4().hex[:16]}"


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


def commit(batch: ConvertedBatch) -> None:
    """Point the batch at its new attempt, then remove attempts older than the one before it (and those a
    killed conversion left)."""
    previous = read(batch.folder)
    _write_atomically(join(batch.folder, POINTER), json.dumps(asdict(batch), indent=1))
    keep = {batch.attempt} | ({previous.attempt} if previous else set())
    fs, path = resolve(batch.folder)
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type == pafs.FileType.Directory and info.base_name.startswith(ATTEMPT_PREFIX):
            if info.base_name not in keep:
                fs.delete_dir(info.path)


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
