"""`[monitoring]` and the `[gateway]` log keys: defaults, and errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, MonitoringSection, parse_config


def document(**tables: Any) -> dict[str, Any]:
    return {
        "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
        "chargers": [{"id": "CP-1", "host": "192.0.2.1"}],
        **tables,
    }


def problems(**tables: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(document(**tables))
    return error.value.problems


def test_defaults() -> None:
    config = parse_config(document())
    assert config.monitoring == MonitoringSection()
    assert config.monitoring.circuit_alarm_share == 0.95
    assert config.gateway.log_format == "json"
    assert config.gateway.log_file is None
    custom = parse_config(
        document(
            gateway={"log_format": "text", "log_file": "/var/log/evgw/evgw.log"},
            monitoring={"check_interval_s": 1, "queue_alarm_threshold": 50},
        )
    )
    assert custom.gateway.log_format == "text"
    assert custom.gateway.log_file == Path("/var/log/evgw/evgw.log")
    assert custom.monitoring.check_interval_s == 1.0
    assert custom.monitoring.queue_alarm_threshold == 50


def test_errors_name_the_key() -> None:
    assert problems(monitoring={"circuit_clear_share": 0.96}) == [
        "monitoring.circuit_clear_share: 0.96 must be below circuit_alarm_share 0.95"
    ]
    assert problems(monitoring={"check_interval_s": 0}) == [
        "monitoring.check_interval_s: must be a number between 0.1 and 60, got 0"
    ]
    (unknown,) = problems(monitoring={"uplink_grace": 5})
    assert unknown.startswith("monitoring.uplink_grace: unknown key")
    assert problems(gateway={"log_format": "xml"}) == [
        'gateway.log_format: must be one of json, text, got "xml"'
    ]
    assert problems(gateway={"log_file_max_bytes": 10}) == [
        "gateway.log_file_max_bytes: must be an integer between 100000 and 1000000000, got 10"
    ]
