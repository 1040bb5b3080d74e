"""`teem demo`: the sample generated once, then every layer materialized for all its batch dates."""

from __future__ import annotations

import datetime as dt
import os
import time

from teem_assets.runner import Materialized, instance, run_range
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

DEMO_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)


def ensure_sample(root: str) -> bool:
    """Generate the demo sample under `root` unless an unload is there already; True when generated."""
    if os.path.isdir(os.path.join(root, "csv")):
        return False
    generate_sample(root, DEMO_SPEC, UnloadOptions())
    return True


def print_materialized(materialized: list[Materialized]) -> None:
    for item in materialized:
        quarantined = "" if item.quarantined is None else f"  {item.quarantined} quarantined"
        print(f"  {item.asset:<28} {item.partitions:<24} {item.rows!s:>8} rows{quarantined}")


def run_demo(root: str) -> int:
    started = time.monotonic()
    if ensure_sample(root):
        print(f"generated the sample ({DEMO_SPEC.days} days from {DEMO_SPEC.start}) under {root}/csv")
    else:
        print(f"using the unloads already under {root}/csv")
    result, materialized = run_range(DEMO_SPEC.start, DEMO_SPEC.end)
    print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in {time.monotonic() - started:.0f} s")
    print_materialized(materialized)
    print(f"\nIceberg tables under {root}/warehouse (`teem table NAME` shows one). To browse the runs and assets:")
    print(f"  DAGSTER_HOME={instance().root_directory} ./dev.sh ui    # then open http://127.0.0.1:3000")
    return 0 if result.success else 1
