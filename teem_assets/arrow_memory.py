"""Arrow's freed memory given back to the system once a piece of work is done.

pyarrow's allocator (mimalloc) keeps the memory Arrow frees for its next allocations, so a process held on
to the peak of every export and conversion it had run (measured: four data files of a fact table read and
freed, 539 MB RSS; 141 MB once released).
"""

from __future__ import annotations

import pyarrow as pa


def release_arrow_memory() -> None:
    pa.default_memory_pool().release_unused()
