"""Which files an unload is made of: manifests, stale parts of an earlier unload, unreadable files."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from teem_assets.redshift_types import parse_columns_spec
from teem_assets.sample.unload_writer import write_unload
from teem_assets.unload.convert import convert_part
from teem_assets.unload.parts import UnloadError, find_parts

COLUMNS = parse_columns_spec("id:int,name:varchar(20)")
ROWS = [(i, f"name {i}") for i in range(100)]


def _unload(folder: Path, rows=ROWS, **options) -> list[str]:
    return write_unload(rows, [t for _, t in COLUMNS], str(folder), "t_", slices=3, **options).files


def test_manifest_lists_exactly_the_parts_to_read(tmp_path: Path):
    files = _unload(tmp_path, manifest=True, url_prefix="s3://bucket/unload/t")
    (tmp_path / "t_0009_part_00").write_bytes(b'"999"|"stale"\n')  # not in the manifest
    found = find_parts(str(tmp_path))
    assert found.manifest == str(tmp_path / "t_manifest")
    assert sorted(p.uri for p in found.parts) == sorted(files)
    assert sum(p.expected_records for p in found.parts) == len(ROWS)


def test_manifest_size_mismatch_names_the_file(tmp_path: Path):
    files = _unload(tmp_path, manifest=True)
    with open(files[1], "ab") as handle:
        handle.write(b'"1000"|"extra"\n')
    with pytest.raises(UnloadError, match=os.path.basename(files[1]) + ".*manifest says"):
        find_parts(str(tmp_path))


def test_manifest_missing_file_is_an_error(tmp_path: Path):
    files = _unload(tmp_path, manifest=True)
    os.remove(files[0])
    with pytest.raises(UnloadError, match="missing"):
        find_parts(str(tmp_path))


def test_manifest_record_count_is_verified(tmp_path: Path):
    files = _unload(tmp_path, manifest=True)
    manifest = tmp_path / "t_manifest"
    document = json.loads(manifest.read_text())
    document["entries"][0]["meta"]["record_count"] += 1
    manifest.write_text(json.dumps(document))
    part = next(p for p in find_parts(str(tmp_path)).parts if p.uri == files[0])
    with pytest.raises(UnloadError, match="records"):
        convert_part(part, COLUMNS, str(tmp_path / "out"), str(tmp_path / "q"))


def test_without_manifest_stale_parts_of_an_earlier_unload_are_ignored(tmp_path: Path):
    old = _unload(tmp_path, rows=[(i, "old") for i in range(300)], max_file_size=1000)
    for path in old:
        os.utime(path, (1_000_000_000, 1_000_000_000))  # an unload written long before
    new = _unload(tmp_path, rows=ROWS[:10])
    found = find_parts(str(tmp_path))
    assert sorted(p.uri for p in found.parts) == sorted(new)
    stale = set(old) - set(new)
    assert stale and found.stale == sorted(Path(p).name for p in stale) and found.ignored == []


def test_truncated_gzip_part_is_a_clear_error(tmp_path: Path):
    files = _unload(tmp_path, compress=True)
    data = Path(files[0]).read_bytes()
    assert gzip.decompress(data)
    Path(files[0]).write_bytes(data[: len(data) // 2])
    part = next(p for p in find_parts(str(tmp_path)).parts if p.uri == files[0])
    with pytest.raises(UnloadError, match=os.path.basename(files[0])):
        convert_part(part, COLUMNS, str(tmp_path / "out"), str(tmp_path / "q"))


def test_missing_location_is_an_error(tmp_path: Path):
    with pytest.raises(UnloadError, match="no such file"):
        find_parts(str(tmp_path / "nothing"))
