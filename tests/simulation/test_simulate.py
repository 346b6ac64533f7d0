"""`evgw simulate` on the shipped depot example, as a user runs it: every charger of the
configuration simulated on its own kind of transport (Modbus TCP, RTU on a pty bus, RTU over
TCP, MQTT on a local Mosquitto), the gateway balancing them with the simulated site meter, a
local central system printing what reaches it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gateway.config import load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "depot.toml"


def test_the_depot_example_is_a_valid_configuration() -> None:
    config = load_config(EXAMPLE)
    transports = {charger.transport for charger in config.chargers}
    assert transports == {"tcp", "rtu", "rtu-over-tcp", "mqtt"}
    assert {charger.profile for charger in config.chargers if charger.transport != "mqtt"} == {
        "keba-p30",
        "keba-p40",
        "alfen-ng9xx",
        "abb-terra-ac",
        "heidelberg-energy-control",
    }
    assert [meter.circuit for meter in config.meters] == ["grid"]


def test_simulate_runs_the_depot_example_on_simulated_hardware() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "simulate",
            "--config",
            str(EXAMPLE),
            "--duration",
            "25",
            "--speed",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,  # a bound against a hang, not a timing assertion
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    config = load_config(EXAMPLE)
    booted = set(re.findall(r"(\S+)\s+→ BootNotification", out))
    assert booted == {charger.id for charger in config.chargers}
    started = set(re.findall(r"(\S+)\s+→ StartTransaction", out))
    # Sessions on every kind of transport: TCP, RTU bus, RTU over TCP and both MQTT styles.
    for charger_id in ("DEPOT-A01", "DEPOT-B01", "DEPOT-A07", "DEPOT-B05", "DEPOT-B06"):
        assert charger_id in started, (charger_id, sorted(started))
    assert "Traceback" not in completed.stderr
    assert out.rstrip().endswith("evgw simulate: stopped")
