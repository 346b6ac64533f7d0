"""Configuration of how chargers and meters are reached: Modbus TCP, RTU on a serial line,
RTU over TCP, MQTT through a broker, and meters on circuits."""

from __future__ import annotations

import tomllib as config_toml
from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, SerialSection, load_config, parse_config

BASE = """
[upstream]
url = "ws://csms.example.com/ocpp"
"""


def parse(text: str) -> GatewayConfig:
    return parse_config(config_toml.loads(BASE + text))


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    return raised.value.problems


def test_chargers_on_each_transport() -> None:
    config = parse_config(
        config_toml.loads(
            BASE
            + """
[[chargers]]
id = "tcp"
host = "192.0.2.10"

[[chargers]]
id = "heidelberg-1"
profile = "generic"
transport = "rtu"
serial_port = "/dev/ttyUSB0"
baudrate = 19200
parity = "E"
unit_id = 1

[[chargers]]
id = "heidelberg-2"
transport = "rtu"
serial_port = "/dev/ttyUSB0"
baudrate = 19200
parity = "E"
unit_id = 2

[[chargers]]
id = "abb"
transport = "rtu-over-tcp"
host = "192.0.2.30"
port = 4196

[[chargers]]
id = "garage"
transport = "mqtt"
mqtt_style = "go-e"
mqtt_id = "012345"

[mqtt]
host = "127.0.0.1"
username = "evgw"
password = "s3cret"
"""
        )
    )
    tcp, rtu1, rtu2, over_tcp, mqtt = config.chargers
    assert (tcp.transport, tcp.host, tcp.port, tcp.serial) == ("tcp", "192.0.2.10", 502, None)
    assert rtu1.serial == SerialSection("/dev/ttyUSB0", 19200, "E", 1, 8) == rtu2.serial
    assert (rtu1.host, rtu2.unit_id) == ("", 2)
    assert (over_tcp.transport, over_tcp.port) == ("rtu-over-tcp", 4196)
    assert (mqtt.mqtt_style, mqtt.mqtt_id) == ("go-e", "012345")
    assert config.mqtt is not None
    assert config.mqtt.port == 1883
    assert config.mqtt.password == "s3cret"
    assert "s3cret" not in repr(config.mqtt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[chargers]]\nid = "a"\ntransport = "rtu"\n',
            "chargers[0].serial_port: missing required key",
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "rtu"\nserial_port = "/dev/x"\nhost = "h"\n',
            "chargers[0].host: does not apply to transport 'rtu'",
        ),
        (
            '[[chargers]]\nid = "a"\nhost = "h"\nbaudrate = 9600\n',
            "chargers[0].baudrate: does not apply to transport 'tcp'",
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "rtu"\nserial_port = "/dev/x"\nbaudrate = 9601\n',
            "chargers[0].baudrate: must be one of 1200, 2400",
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "zigbee"\nhost = "h"\n',
            'chargers[0].transport: must be one of tcp, rtu, rtu-over-tcp, mqtt, got "zigbee"',
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "mqtt"\nmqtt_style = "go-e"\n',
            'chargers[0].transport: "mqtt" needs an [mqtt] table naming the broker',
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "mqtt"\nmqtt_style = "tesla"\n'
            '[mqtt]\nhost = "b"\n',
            "chargers[0].mqtt_style: must be one of go-e, openwb, evgw",
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "mqtt"\nmqtt_style = "evgw"\n'
            'mqtt_id = "site/#"\n[mqtt]\nhost = "b"\n',
            "chargers[0].mqtt_id: must not contain MQTT wildcards",
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "mqtt"\nmqtt_style = "evgw"\nhost = "h"\n'
            '[mqtt]\nhost = "b"\n',
            "chargers[0].host: does not apply to transport 'mqtt'",
        ),
        (
            '[[chargers]]\nid = "a"\nhost = "h"\nmqtt_style = "go-e"\n',
            'chargers[0].mqtt_style: only for transport "mqtt"',
        ),
        (
            '[[chargers]]\nid = "a"\nhost = "h"\n[mqtt]\nhost = "b"\n',
            'mqtt: no charger has transport = "mqtt"',
        ),
        (
            '[[chargers]]\nid = "a"\ntransport = "rtu"\nserial_port = "/dev/x"\n'
            '[[chargers]]\nid = "b"\ntransport = "rtu"\nserial_port = "/dev/x"\n'
            "baudrate = 9600\n",
            "chargers[1].serial_port: '/dev/x' is already used by chargers[0] with other"
            " settings (19200 8E1 there, 9600 8E1 here)",
        ),
    ],
)
def test_transport_errors_name_the_key(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(problem.startswith(expected) for problem in problems), problems


MQTT_CHARGER = '[[chargers]]\nid = "a"\ntransport = "mqtt"\nmqtt_style = "evgw"\n'


def test_the_mqtt_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVGW_TEST_MQTT_PASSWORD", "from-env")
    config = parse_config(
        config_toml.loads(
            BASE + MQTT_CHARGER + '[mqtt]\nhost = "b"\npassword_env = "EVGW_TEST_MQTT_PASSWORD"\n'
        )
    )
    assert config.mqtt is not None
    assert config.mqtt.password == "from-env"


def test_the_mqtt_password_comes_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("from-file\n", encoding="utf-8")
    config = load_config(
        _write(tmp_path, BASE + MQTT_CHARGER + f'[mqtt]\nhost = "b"\npassword_file = "{secret}"\n')
    )
    assert config.mqtt is not None
    assert config.mqtt.password == "from-file"


def test_secret_problems_never_show_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVGW_TEST_UNSET", raising=False)
    problems = problems_of(
        MQTT_CHARGER + '[mqtt]\nhost = "b"\npassword = "hunter2"\npassword_env = "X"\n'
    )
    assert problems == ["mqtt.password_env: give only one of password, password_env"]
    problems = problems_of(MQTT_CHARGER + '[mqtt]\nhost = "b"\npassword_env = "EVGW_TEST_UNSET"\n')
    assert problems == ["mqtt.password_env: environment variable EVGW_TEST_UNSET is not set"]
    problems = problems_of(MQTT_CHARGER + '[mqtt]\nhost = "b"\nca_file = "/x"\n')
    assert problems == ["mqtt.ca_file: only with tls = true"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "evgw.toml"
    path.write_text(text, encoding="utf-8")
    return path


METERED = """
[[chargers]]
id = "a"
host = "h"

[[circuits]]
id = "grid"
max_current_a = 63

[[circuits]]
id = "board"
parent = "grid"
max_current_a = 40
"""


def test_meters_on_circuits() -> None:
    config = parse_config(
        config_toml.loads(
            BASE
            + METERED
            + '[[meters]]\nid = "site"\ncircuit = "grid"\nhost = "192.0.2.20"\n'
            + '[[meters]]\nid = "board"\ncircuit = "board"\nprofile = "abb-b23"\n'
            + 'transport = "rtu"\nserial_port = "/dev/ttyUSB1"\nunit_id = 3\n'
        )
    )
    site, board = config.meters
    assert (site.profile, site.host, site.stale_after_s) == ("eastron-sdm630", "192.0.2.20", 10.0)
    assert board.serial is not None
    assert (board.transport, board.serial.port, board.unit_id) == ("rtu", "/dev/ttyUSB1", 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[meters]]\nid = "m"\ncircuit = "attic"\nhost = "h"\n', "meters[0].circuit: unknown"),
        (
            '[[meters]]\nid = "m"\ncircuit = "grid"\nhost = "h"\n'
            '[[meters]]\nid = "n"\ncircuit = "grid"\nhost = "h"\n',
            "meters[1].circuit: 'grid' is already measured by meters[0]",
        ),
        (
            '[[meters]]\nid = "m"\ncircuit = "grid"\nhost = "h"\npoll_interval_s = 5\n'
            "stale_after_s = 4\n",
            "meters[0].stale_after_s: 4 s must be longer than poll_interval_s 5 s",
        ),
        (
            '[[meters]]\nid = "m"\ncircuit = "grid"\ntransport = "mqtt"\n',
            "meters[0].transport: must be one of tcp, rtu, rtu-over-tcp",
        ),
    ],
)
def test_meter_errors_name_the_key(text: str, expected: str) -> None:
    problems = problems_of(METERED + text)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_meter_without_circuits_is_refused() -> None:
    problems = problems_of(
        '[[chargers]]\nid = "a"\nhost = "h"\n[[meters]]\nid = "m"\ncircuit = "grid"\nhost = "h"\n'
    )
    assert problems == ["meters[0].circuit: a meter needs [[circuits]] to give headroom to"]
