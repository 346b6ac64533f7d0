"""A small real site for the monitoring and diagnostics tests: two Modbus TCP chargers (a
KEBA P30 and a generic one, each its own pymodbus server), a grid meter on its own Modbus
TCP server, one fuse, the gateway, and an `ocpp`-package central system upstream."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config import parse_config
from gateway.meters import SimulatedMeter
from gateway.modbus import SimulatedCharger, SimulatorServer
from gateway.runtime import Gateway
from tests.ocpp.central_system_ocpp import OcppPackageCsms

FUSE_A = 40.0
EVENTUALLY_S = 30.0
SECRET_TOKEN = "s3cret-api-token-0123456789"
"""The local API's admin token: must never appear in a diagnostics bundle."""
SECRET_FILE_TOKEN = "file-token-abcdefghijklmnop"
"""A read user's token, from a token_file."""


@dataclass
class MonitoredSite:
    gateway: Gateway
    csms: OcppPackageCsms
    chargers: dict[str, SimulatedCharger]
    ports: dict[str, int]
    meter: SimulatedMeter
    config_file: Path


async def until(condition: Callable[[], bool], what: str, timeout_s: float = EVENTUALLY_S) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - the states polled offer no event
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s} s: {what}") from None


def site_config(
    tmp_path: Path, csms_url: str, ports: dict[str, int], meter_port: int, extra: str = ""
) -> str:
    token_file = tmp_path / "read-token"
    token_file.write_text(SECRET_FILE_TOKEN + "\n", encoding="utf-8")
    return f"""
[gateway]
store = "{tmp_path / "evgw.sqlite3"}"
{extra}

[upstream]
url = "{csms_url}"
meter_value_sample_interval_s = 0

[[chargers]]
id = "CP-KEBA"
profile = "keba-p30"
host = "127.0.0.1"
port = {ports["CP-KEBA"]}
poll_interval_s = 0.2
max_current_a = 16

[[chargers]]
id = "CP-GENERIC"
profile = "generic"
host = "127.0.0.1"
port = {ports["CP-GENERIC"]}
unit_id = 1
poll_interval_s = 0.2
max_current_a = 16

[[circuits]]
id = "grid"
max_current_a = {FUSE_A}

[[meters]]
id = "site"
profile = "eastron-sdm630"
circuit = "grid"
host = "127.0.0.1"
port = {meter_port}
unit_id = 5
poll_interval_s = 0.2
stale_after_s = 5

[balancing]
interval_s = 1
ramp_a_per_s = 50

[monitoring]
check_interval_s = 0.2
charger_offline_grace_s = 1.0
uplink_grace_s = 1.0
queue_alarm_threshold = 1

[api]
host = "127.0.0.1"
port = 0

[[api.users]]
name = "operator"
role = "admin"
token = "{SECRET_TOKEN}"

[[api.users]]
name = "viewer"
role = "read"
token_file = "{token_file}"
"""


@contextlib.asynccontextmanager
async def monitored_site(tmp_path: Path, extra: str = "") -> AsyncIterator[MonitoredSite]:
    async with contextlib.AsyncExitStack() as stack:
        csms = OcppPackageCsms()
        await csms.start()
        stack.push_async_callback(csms.stop)
        keba = SimulatedCharger("keba-p30")
        generic = SimulatedCharger("generic", unit_id=1)
        chargers = {"CP-KEBA": keba, "CP-GENERIC": generic}

        def ours() -> tuple[float, float, float]:
            currents = [sim.phase_currents_a for sim in chargers.values()]
            return (
                sum(c[0] for c in currents),
                sum(c[1] for c in currents),
                sum(c[2] for c in currents),
            )

        meter = SimulatedMeter("eastron-sdm630", unit_id=5, sources=[ours])
        meter_server = SimulatorServer([meter])
        meter_port = await meter_server.start()
        stack.push_async_callback(meter_server.stop)
        ports = {}
        for charger_id, sim in chargers.items():
            ports[charger_id] = await sim.start()
            stack.push_async_callback(sim.stop)

        text = site_config(tmp_path, csms.url, ports, meter_port, extra)
        config_file = tmp_path / "evgw.toml"
        config_file.write_text(text, encoding="utf-8")
        gateway = await Gateway.open(parse_config(tomllib.loads(text)))
        stack.push_async_callback(gateway.close)
        running = asyncio.create_task(gateway.run())

        async def stop_gateway() -> None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

        stack.push_async_callback(stop_gateway)
        await until(
            lambda: all(gateway.site.connector(cid).online for cid in chargers),
            "every charger answers",
        )
        yield MonitoredSite(gateway, csms, chargers, ports, meter, config_file)
