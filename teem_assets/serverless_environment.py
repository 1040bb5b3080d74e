"""`teem package --target emr-serverless`: the archive EMR Serverless unpacks beside each driver and executor
(`spark.archives=<uri>#environment`), holding everything the stages' Python needs but glibc. EMR 7's image has
Python 3.9 and installs nothing, so the archive carries this machine's Python 3.11 itself: the interpreter, its
standard library, the shared libraries its extension modules link beyond glibc (as auditwheel does for a
wheel), and the stages' requirements installed beside them. No virtualenv: Python finds its standard library
from its own binary's folder (`lib/python3.X/os.py` above it), wherever the archive was unpacked."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from teem_assets.packaging import PROJECT, cluster_requirements, download_wheels, pip, wheel_options
from teem_assets.stages.entry import DRIVER_SCRIPT

# Beside the archive's URI: the stages' driver, EMR Serverless's entryPoint (EmrServerlessResource).
BESIDE = {".teem_stage.py": DRIVER_SCRIPT.encode()}

# EMR 7's image (Amazon Linux 2023) has glibc 2.34: nothing in the archive may need a newer one.
NODE_GLIBC = (2, 34)
# What every manylinux wheel may take from the node (PEP 600's policy), glibc's own libraries among them.
NODE_LIBRARIES = {
    "linux-vdso.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libdl.so.2",
    "librt.so.1", "libpthread.so.0", "libutil.so.1", "libresolv.so.2", "libgcc_s.so.1", "libstdc++.so.6",
}  # fmt: skip
# Parts of the standard library no stage imports: tests, GUIs, terminals, the build's static library, and the
# extension modules that would bring this machine's libraries of them (crypt, curses, readline, dbm, NIS).
LEFT_OUT = (
    "site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__", "config-*",
    "_tkinter*.so", "_crypt*.so", "_curses*.so", "readline*.so", "_dbm*.so", "_gdbm*.so", "nis*.so",
    "_test*.so", "xx*.so",
)  # fmt: skip
LAUNCHER = """#!/bin/sh
# teem-pipelines' Python for EMR Serverless: its libraries are beside it, wherever the archive was unpacked.
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$here/python{version}" "$@"
"""
GLIBC_VERSION = re.compile(rb"GLIBC_(\d+)\.(\d+)")
LINKED = re.compile(r"^\s*(\S+) => (\S+) \(0x")


class UnfitEnvironmentError(RuntimeError):
    """An archive that would not run on EMR Serverless, refused before it is uploaded."""


@dataclass(frozen=True)
class Environment:
    path: Path
    libraries: list[str]  # bundled beside the interpreter
    glibc: tuple[int, int]  # the newest glibc anything in it needs
    seconds: float

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"\x7fELF"


def _links(binary: Path) -> dict[str, str]:
    """The shared libraries `binary` loads, by name, and where this machine finds them."""
    found = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    return {m.group(1): m.group(2) for m in map(LINKED.match, found.splitlines()) if m}


def _newest_glibc(binary: Path) -> tuple[int, int]:
    symbols = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, check=True).stdout
    return max(((int(a), int(b)) for a, b in GLIBC_VERSION.findall(symbols)), default=(0, 0))


def _copy_standard_library(home: Path, version: str) -> None:
    interpreter = Path(sys._base_executable).resolve()  # the venv's base Python, not its symlink
    (home / "bin").mkdir(parents=True)
    shutil.copy2(interpreter, home / f"bin/python{version}")
    launcher = home / "bin/python"
    launcher.write_text(LAUNCHER.replace("{version}", version))
    launcher.chmod(0o755)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # under the platform's library folder (lib64 on Amazon Linux), where the interpreter looks for it
    target = home / sys.platlibdir / f"python{version}"
    shutil.copytree(stdlib, target, ignore=shutil.ignore_patterns(*LEFT_OUT), symlinks=False)


def _bundle_libraries(home: Path) -> list[str]:
    """Copy into lib/ every library an ELF file of the interpreter and standard library loads that the node
    does not provide, and theirs in turn."""
    bundled: dict[str, str] = {}
    pending = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    while pending:
        for name, location in _links(pending.pop()).items():
            if name in NODE_LIBRARIES or name in bundled or location.startswith(str(home)):
                continue
            bundled[name] = location
            target = home / "lib" / name
            shutil.copy2(Path(location).resolve(), target)
            pending.append(target)
    return sorted(bundled)


def check_glibc(home: Path, node_glibc: tuple[int, int]) -> tuple[int, int]:
    newest, needing = (0, 0), None
    for path in (p for p in home.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)):
        needed = _newest_glibc(path)
        if needed > newest:
            newest, needing = needed, path
    if newest > node_glibc:
        raise UnfitEnvironmentError(
            f"{needing.relative_to(home)} needs glibc {newest[0]}.{newest[1]}, the nodes have "
            f"{node_glibc[0]}.{node_glibc[1]}: build the archive on Amazon Linux 2023 (EMR 7's image; README)"
        )
    return newest


def build_environment(
    out: Path, requirements: list[str] | None = None, node_glibc: tuple[int, int] = NODE_GLIBC
) -> Environment:
    """Build the archive in `out` for this machine's CPU and Python, the requirements' wheels those of the
    node's platform (manylinux, glibc 2.34 at most); refused if anything in it needs a glibc newer than
    `node_glibc`."""
    started = time.monotonic()
    requirements = cluster_requirements() if requirements is None else requirements
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    arch = platform.machine()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="teem-serverless-") as folder:
        home, wheels = Path(folder) / "environment", Path(folder) / "wheels"
        _copy_standard_library(home, version)
        libraries = _bundle_libraries(home)
        download_wheels(wheels, requirements, arch, version)
        site = home / sys.platlibdir / f"python{version}/site-packages"
        pip(
            "install", "--quiet", "--no-index", "--find-links", str(wheels), *wheel_options(arch, version),
            "--target", str(site), *requirements, PROJECT, *([] if requirements else ["--no-deps"]),
        )  # fmt: skip
        glibc = check_glibc(home, node_glibc)
        path = out / f"teem-serverless-py{version}-{arch}.tar.gz"
        with tarfile.open(path, "w:gz", compresslevel=6) as archive:  # gzip's own default: 9 is twice as slow
            for child in sorted(home.iterdir()):
                archive.add(child, arcname=child.name)  # spark.archives unpacks it as ./environment/
    return Environment(path, libraries, glibc, time.monotonic() - started)
