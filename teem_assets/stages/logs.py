"""The stages log to the `teem` logger; whoever runs a stage forwards those lines to its own log (the Dagster
step's, or Dagster Pipes' from a driver)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STAGE_LOGGER = "teem"


class _Forward(logging.Handler):
    def __init__(self, target: Any) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.log(record.levelno, record.getMessage())


@contextmanager
def forwarding_stage_logs(target: Any) -> Iterator[None]:
    """While inside, the stages' lines go to `target.log(level, message)` as well."""
    handler, logger = _Forward(target), logging.getLogger(STAGE_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
