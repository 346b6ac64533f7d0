"""Log output for machines and for the diagnostics bundle.

- `JsonFormatter`: one JSON object per line (`time`, `level`, `logger`, `message`, every
  `extra=` field, `exception` with its traceback), what journald forwarders and log
  shippers ingest without a parser.
- `RecentLogs`: a bounded in-memory ring of the latest records, so the diagnostics bundle
  has the recent logs even when no log file is configured (journald alone keeps them out of
  the gateway's reach without privileges). Records are formatted when they are logged, so the
  ring holds text only and keeps no object a record refers to alive.
- `rotating_file_handler`: the `[gateway] log_file`, rotated by size.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
"""What every LogRecord has: the rest of its attributes are the `extra=` fields."""

RECENT_RECORDS: Final = 2000
"""Records the in-memory ring keeps: minutes to hours of a busy site's INFO logs, a few MB of
memory at most."""


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in RECORD_ATTRIBUTES and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot hold are given as their `str()`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            # A field named like one of ours must not replace it.
            entry[key if key not in entry else f"extra_{key}"] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=_as_text, ensure_ascii=False)


def _as_text(value: object) -> str:
    """`str(value)`, or its type's name when even that fails (a dead weak proxy, a broken
    `__str__`): a log line must never be the thing that fails."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class RecentLogs(logging.Handler):
    """Keeps the latest `capacity` records in memory (see the module docstring)."""

    def __init__(self, capacity: int = RECENT_RECORDS) -> None:
        super().__init__()
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._formatter = JsonFormatter()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._formatter.format(record)
        except Exception:
            # A record whose message cannot be built (bad %-arguments) is kept as a note.
            line = json.dumps(
                {"level": record.levelname, "logger": record.name, "message": "unformattable"}
            )
        with self._guard:
            self._lines.append((record.levelno, line))

    def lines(self, minimum_level: int = logging.NOTSET) -> list[str]:
        """The kept records at `minimum_level` or above as JSON lines, oldest first."""
        with self._guard:
            kept = list(self._lines)
        return [line for level, line in kept if level >= minimum_level]


_recent: RecentLogs | None = None
_install_guard = threading.Lock()


def recent_logs() -> RecentLogs:
    """The process's ring of recent records, attached to the root logger on first use."""
    global _recent
    with _install_guard:
        if _recent is None:
            _recent = RecentLogs()
        root = logging.getLogger()
        if _recent not in root.handlers:
            root.addHandler(_recent)
        return _recent


def rotating_file_handler(path: Path, *, max_bytes: int, backups: int) -> logging.Handler:
    """A JSON-lines file at `path` (its directory created), rotated at `max_bytes` with
    `backups` old files (`path.1` newest): at most (1 + backups) x max_bytes on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(JsonFormatter())
    return handler


def log_files(path: Path, backups: int) -> list[Path]:
    """The files of a rotated log, oldest first (those that exist)."""
    candidates = [path.with_name(f"{path.name}.{n}") for n in range(backups, 0, -1)]
    return [p for p in [*candidates, path] if p.is_file()]
