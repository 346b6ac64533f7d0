"""The gateway as `evgw run` wires it, over every southbound transport at once: two chargers
and the site meter on one RS-485 bus (a pty null-modem pair), an ABB behind a
serial-to-Ethernet converter (RTU over TCP), a KEBA on Modbus TCP and an MQTT charger on our
own schema through a real Mosquitto, balanced under one fuse with the meter's headroom, with
a central system built on the `ocpp` package upstream."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config import parse_config
from gateway.meters import SimulatedMeter
from gateway.modbus import SerialPair, SimulatedCharger, SimulatorServer
from gateway.modbus.serial_pair import PTY_LINE
from gateway.mqtt import MqttConfig
from gateway.mqtt.broker import LocalBroker
from gateway.mqtt.simulator import EvgwSimulator
from gateway.runtime import Gateway
from gateway.simulation import SimulatedChargePoint
from tests.ocpp.central_system_ocpp import OcppPackageCsms

FUSE_A = 63.0
BUILDING_L1_A = 30.0
"""Load on the grid meter's L1 that is not ours: the chargers get 63 - 30 A there."""
EVENTUALLY_S = 30.0


@dataclass
class Site:
    gateway: Gateway
    chargers: dict[str, SimulatedChargePoint]
    meter: SimulatedMeter


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(EVENTUALLY_S):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {EVENTUALLY_S} s: {what}") from None


@contextlib.asynccontextmanager
async def mixed_site(tmp_path: Path) -> AsyncIterator[Site]:
    async with contextlib.AsyncExitStack() as stack:
        csms = OcppPackageCsms()
        await csms.start()
        stack.push_async_callback(csms.stop)

        # One RS-485 bus: Heidelberg (unit 1), generic (unit 2) and the grid meter (unit 5).
        pair = SerialPair()
        stack.callback(pair.close)
        heidelberg = SimulatedCharger("heidelberg-energy-control", unit_id=1)
        generic = SimulatedCharger("generic", unit_id=2)
        abb = SimulatedCharger("abb-terra-ac", unit_id=1)
        keba = SimulatedCharger("keba-p30")
        mqtt_charger = SimulatedChargePoint(name="CP-MQTT")

        def ours() -> tuple[float, float, float]:
            currents = [sim.phase_currents_a for sim in (heidelberg, generic, abb, keba)]
            currents.append(mqtt_charger.phase_currents_a)
            return (
                sum(c[0] for c in currents),
                sum(c[1] for c in currents),
                sum(c[2] for c in currents),
            )

        meter = SimulatedMeter(
            "eastron-sdm630", unit_id=5, base_load_a=(BUILDING_L1_A, 0.0, 0.0), sources=[ours]
        )
        bus = SimulatorServer([heidelberg, generic, meter])
        await bus.start_serial(pair.port_b, PTY_LINE)
        stack.push_async_callback(bus.stop)

        converter = SimulatorServer([abb])
        converter_port = await converter.start_rtu_over_tcp()
        stack.push_async_callback(converter.stop)
        keba_port = await keba.start()
        stack.push_async_callback(keba.stop)

        broker = LocalBroker.anonymous(tmp_path)
        await broker.start()
        stack.push_async_callback(broker.stop)
        mqtt_sim = EvgwSimulator(
            MqttConfig(port=broker.port, client_id="sim-mqtt"),
            "CP-MQTT",
            charge_point=mqtt_charger,
            interval_s=0.2,
        )
        await mqtt_sim.start()
        stack.push_async_callback(mqtt_sim.stop)

        rtu = f'transport = "rtu"\nserial_port = "{pair.port_a}"\nbaudrate = 115200\nparity = "N"'
        text = f"""
[gateway]
store = "{tmp_path / "evgw.sqlite3"}"

[upstream]
url = "{csms.url}"
meter_value_sample_interval_s = 0

[[chargers]]
id = "CP-HEIDELBERG"
profile = "heidelberg-energy-control"
{rtu}
unit_id = 1
poll_interval_s = 0.5
max_current_a = 16
failsafe_current_a = 6
watchdog_timeout_s = 60

[[chargers]]
id = "CP-GENERIC"
profile = "generic"
{rtu}
unit_id = 2
poll_interval_s = 0.5
max_current_a = 16

[[chargers]]
id = "CP-ABB"
profile = "abb-terra-ac"
transport = "rtu-over-tcp"
host = "127.0.0.1"
port = {converter_port}
poll_interval_s = 0.5
max_current_a = 16

[[chargers]]
id = "CP-KEBA"
profile = "keba-p30"
host = "127.0.0.1"
port = {keba_port}
poll_interval_s = 0.5
max_current_a = 16

[[chargers]]
id = "CP-MQTT"
transport = "mqtt"
mqtt_style = "evgw"
poll_interval_s = 0.5
max_current_a = 16

[mqtt]
host = "127.0.0.1"
port = {broker.port}
client_id = "gateway-under-test"
stale_after_s = 5

[[circuits]]
id = "grid"
max_current_a = {FUSE_A}

[[meters]]
id = "site"
profile = "eastron-sdm630"
circuit = "grid"
{rtu}
unit_id = 5
poll_interval_s = 0.5
stale_after_s = 5

[balancing]
interval_s = 1
ramp_a_per_s = 50
"""
        config = parse_config(tomllib.loads(text))
        gateway = await Gateway.open(config)
        stack.push_async_callback(gateway.close)
        running = asyncio.create_task(gateway.run())

        async def stop_gateway() -> None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

        stack.push_async_callback(stop_gateway)
        yield Site(
            gateway,
            {
                "CP-HEIDELBERG": heidelberg,
                "CP-GENERIC": generic,
                "CP-ABB": abb,
                "CP-KEBA": keba,
                "CP-MQTT": mqtt_charger,
            },
            meter,
        )


async def test_every_transport_feeds_the_site_and_the_balancing_uses_the_meter(
    tmp_path: Path,
) -> None:
    async with mixed_site(tmp_path) as site:
        gateway = site.gateway
        await until(
            lambda: all(
                gateway.site.connector(cid).online and gateway.site.connector(cid).reading
                for cid in site.chargers
            ),
            "every charger answers",
        )
        balancing = gateway.balancing
        assert balancing is not None
        for index, (charger_id, charge_point) in enumerate(site.chargers.items()):
            charge_point.plug_in(energy_needed_wh=50_000.0, max_current_a=16.0)
            await gateway.site.remote_start(charger_id, 1, f"TAG-{index}")

        def charging_everywhere() -> bool:
            return all(cp.current_a > 1.0 for cp in site.chargers.values())

        await until(charging_everywhere, "every EV charges")
        # Five three-phase EVs at up to 16 A want 80 A; L1 has 63 - 30 A of building load.
        await until(lambda: "grid" in balancing.status("CP-KEBA").reason, "the grid fuse binds")
        await until(
            lambda: (
                sum(cp.setpoint_a for cp in site.chargers.values()) <= FUSE_A - BUILDING_L1_A + 0.5
            ),
            "setpoints within the meter's headroom",
        )
        setpoints = {cid: cp.setpoint_a for cid, cp in site.chargers.items()}
        assert all(amps >= 6.0 for amps in setpoints.values()), setpoints
        assert sum(setpoints.values()) <= FUSE_A - BUILDING_L1_A + 0.5, setpoints
        assert "L1" in balancing.status("CP-KEBA").reason

        # The building load leaves: the five share the whole 63 A fuse again.
        site.meter.base_load_a = (0.0, 0.0, 0.0)
        await until(
            lambda: sum(cp.setpoint_a for cp in site.chargers.values()) > FUSE_A - 2.0,
            "the freed headroom is handed out",
        )
        assert sum(cp.setpoint_a for cp in site.chargers.values()) <= FUSE_A + 1e-6
