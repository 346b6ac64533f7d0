"""JSON log lines and the in-memory ring of recent records."""

from __future__ import annotations

import json
import logging

from gateway.monitoring.log_records import JsonFormatter, RecentLogs


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("gateway.x", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_every_line_is_one_json_object_with_the_extra_fields() -> None:
    formatter = JsonFormatter()
    line = formatter.format(
        record("charger %s unreachable\nsecond line", "CP-1", charger_id="CP-1", odd={1, 2})
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "charger CP-1 unreachable\nsecond line"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "gateway.x"
    assert entry["charger_id"] == "CP-1"
    assert entry["odd"] == "{1, 2}"  # not JSON: its str()
    assert entry["time"].endswith("+00:00")
    clash = json.loads(formatter.format(record("m", level="mine")))
    assert clash["level"] == "WARNING"
    assert clash["extra_level"] == "mine"


def test_an_exception_is_one_field_and_the_ring_keeps_only_the_latest() -> None:
    ring = RecentLogs(capacity=3)
    logger = logging.getLogger("gateway.test.ring")
    logger.addHandler(ring)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
        for index in range(4):
            logger.warning("line %d", index)
    finally:
        logger.removeHandler(ring)
        logger.propagate = True
    lines = [json.loads(line) for line in ring.lines()]
    assert [entry["message"] for entry in lines] == ["line 1", "line 2", "line 3"]

    ring = RecentLogs(capacity=3)
    logger.addHandler(ring)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(ring)
    (entry,) = [json.loads(line) for line in ring.lines(logging.ERROR)]
    assert "RuntimeError: boom" in entry["exception"]
