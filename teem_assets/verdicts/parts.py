"""The check of an unload's files: without a manifest, parts left from an earlier unload of the same folder are
not read, and a warning names them (an unload whose parts were written over more than an hour loses rows)."""

from __future__ import annotations

STALE_PARTS = "no_stale_parts"
