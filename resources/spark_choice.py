"""`TEEM_SPARK=auto`: where a run's Spark stages go, decided once at its first stage from the bytes of the
unloads it reads (a listing, nothing read): in the run's process below a limit, else the configured cluster,
since a cluster's start (EMR: commonly 5 to 10 minutes) costs more than a small day's whole work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.fs as pafs

from teem_assets.catalogue import DIMENSIONS, FACTS
from teem_assets.data_root import DataRoot
from teem_assets.unload.location import resolve

GIB = 1024**3


@dataclass(frozen=True)
class SparkChoice:
    where: str
    why: str

    def tags(self) -> dict[str, str]:
        return {"teem/spark": self.where, "teem/spark_why": self.why}


def unload_bytes(root: DataRoot, dates: Sequence[str]) -> int:
    """The bytes of the unloads a run over `dates` reads: the dimensions' snapshots and the facts' batches of
    those dates (an unpartitioned run, the snapshots alone)."""
    folders = [root.raw(t.name, "snapshot") for t in DIMENSIONS] + [root.raw(t.name, d) for t in FACTS for d in dates]
    total = 0
    for folder in folders:
        filesystem, path = resolve(folder)
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        total += sum(info.size or 0 for info in found if info.type == pafs.FileType.File)
    return total


def _size(count: int) -> str:
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / 1024**2:.1f} MiB"


def choose(run_bytes: int, dates: Sequence[str], limit: int, cluster: str, in_process: str) -> SparkChoice:
    span = f"{dates[0]}..{dates[-1]}" if dates else "the snapshots"
    if run_bytes < limit:
        why = f"the run's unloads ({span}) are {_size(run_bytes)}, below TEEM_SPARK_AUTO_MAX_BYTES ({_size(limit)})"
        return SparkChoice(in_process, why)
    why = f"the run's unloads ({span}) are {_size(run_bytes)}, at least TEEM_SPARK_AUTO_MAX_BYTES ({_size(limit)})"
    return SparkChoice(cluster, why)
