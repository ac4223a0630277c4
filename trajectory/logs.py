"""Logging through one helper (STYLE: OSMnx ``utils.log``): structured, one line per step.

Lines are ``key=value`` pairs so a night's log can be grepped and parsed. They carry counts,
dates, ids of files and runs — never names, addresses or coordinates of people (PIPL).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

__all__ = [
    "LOGGER_NAME",
    "log_step",
    "setup_logging",
]

LOGGER_NAME = "gridpatrol"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(level: int = logging.INFO, stream: Any = None) -> logging.Logger:
    """Configure the project's logger once (idempotent) and return it."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(getattr(h, "_gridpatrol", False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%dT%H:%M:%S"))
        handler._gridpatrol = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    # the modules log under "trajectory.*", "scoring.*", "maps.*": route them here
    for name in ("trajectory", "scoring", "maps"):
        child = logging.getLogger(name)
        child.setLevel(level)
        child.parent = logger
    logger.propagate = False
    return logger


def _fmt(value: Any) -> str:
    text = str(value)
    # quoted (JSON string escapes) when it would break the key=value form or the one line
    if not text or any(ch.isspace() or ch in '"=' for ch in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def log_step(step: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one step as ``step=<step> k=v ...``.

    Examples
    --------
    >>> log_step("ingest", files=3, accepted=1200)  # doctest: +SKIP
    2026-11-25T01:00:00 INFO step=ingest files=3 accepted=1200
    """
    parts = [f"step={step}"] + [f"{k}={_fmt(v)}" for k, v in fields.items()]
    logging.getLogger(LOGGER_NAME).log(level, " ".join(parts))
