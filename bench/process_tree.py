"""The processes of a benchmark's process tree whose memory is their own, for its peak RSS."""

from __future__ import annotations

import psutil


def not_yet_its_own(process: psutil.Process) -> bool:
    """A child forked and not yet exec'd (the JVM spawning a shell helper) shares its parent's memory: counting
    its RSS counted the JVM twice (a 1 GB day's peak read 7.2 GB, 3.2 of it such a copy of the JVM's).

    Told by its command line, its parent's: a child forked to work without exec'ing (pyspark's daemon forks
    its Python workers so) would be left out too; the benchmarks' runs start no Python UDF, so none."""
    parent = process.parent()
    return parent is not None and process.cmdline() == parent.cmdline()


def own_memory(tree: psutil.Process) -> list[tuple[psutil.Process, int]]:
    """Each process of `tree` (it and its descendants) that holds memory of its own, with its RSS in bytes;
    a process that ends while it is read is left out."""
    try:
        processes = [tree, *tree.children(recursive=True)]
    except psutil.Error:
        return []
    found = []
    for process in processes:
        try:
            if not not_yet_its_own(process):
                found.append((process, process.memory_info().rss))
        except psutil.Error:
            continue
    return found
