"""`evgw demo`: a small site on embedded defaults.

Simulated Modbus TCP chargers (the `generic` profile) with EVs that plug in and out, the real
gateway polling them, and a local central system that prints what it receives. The last
charger's sessions are started and stopped remotely by the central system, the others by RFID.
Everything runs on 127.0.0.1 with ephemeral ports; the store lives in a temporary directory.
The chargers hang under one 40 A fuse (less than three chargers at 16 A), so the load balancing
has work to do, and the dashboard is served on http://127.0.0.1:8080/ (or a free port when
8080 is taken) with a token generated for the run and printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import tempfile
from pathlib import Path
from typing import Final, TextIO

from gateway.config import (
    DEFAULT_API_PORT,
    ApiSection,
    ApiUser,
    BalancingSection,
    ChargerSection,
    CircuitSection,
    GatewayConfig,
    GatewaySection,
    UpstreamSection,
)
from gateway.demo.central_system import DemoCentralSystem
from gateway.modbus import SimulatedCharger
from gateway.runtime import Gateway

SIMULATION_SPEED: Final = 30.0
"""Simulated seconds per real second, so an EV takes a visible share of its battery within a
demo minute (at 11 kW, 30x makes ~90 Wh per real second)."""
PLUGGED_S: Final = 16.0
UNPLUGGED_S: Final = 5.0
REMOTE_STOP_AFTER_S: Final = 9.0
"""The central system stops remote-started sessions this long after they start."""
DEMO_FUSE_A: Final = 40.0
"""Below three chargers' 48 A: the balancing shares it, visibly on the dashboard."""


def demo_config(
    simulator_ports: list[int],
    central_system_url: str,
    store: Path,
    *,
    api_port: int = DEFAULT_API_PORT,
    api_token: str | None = None,
) -> GatewayConfig:
    """The gateway configuration of the demo, built in code."""
    return GatewayConfig(
        gateway=GatewaySection(store=store, log_level="WARNING"),
        upstream=UpstreamSection(
            url=central_system_url,
            heartbeat_interval_s=10,
            meter_value_sample_interval_s=5,
            connection_timeout_s=30,
        ),
        chargers=tuple(
            ChargerSection(
                id=f"CP-{index + 1}",
                host="127.0.0.1",
                port=port,
                profile="generic",
                poll_interval_s=1.0,
                max_current_a=16.0,
            )
            for index, port in enumerate(simulator_ports)
        ),
        circuits=(CircuitSection(id="depot", max_current_a=(DEMO_FUSE_A,) * 3),),
        balancing=BalancingSection(ramp_a_per_s=5.0),
        api=ApiSection(
            users=(
                ApiUser(name="demo", role="admin", token=api_token or secrets.token_urlsafe(16)),
            ),
            port=api_port,
        ),
    )


async def run_demo(
    *, chargers: int, duration_s: float | None, out: TextIO, api_port: int = DEFAULT_API_PORT
) -> None:
    """Run the demo until cancelled or `duration_s` has passed."""
    central_system = DemoCentralSystem(out)
    simulators = [SimulatedCharger("generic", speed=SIMULATION_SPEED) for _ in range(chargers)]
    remote_identity = f"CP-{chargers}" if chargers > 1 else None
    background: set[asyncio.Task[None]] = set()

    def remote_start_when_preparing(identity: str, connector_id: int, status: str) -> None:
        if identity == remote_identity and connector_id == 1 and status == "Preparing":
            central_system.send_call(
                identity, "RemoteStartTransaction", {"connectorId": 1, "idTag": "APP-USER"}
            )

    def remote_stop_later(identity: str, transaction_id: int) -> None:
        if identity != remote_identity:
            return

        async def stop_later() -> None:
            await asyncio.sleep(REMOTE_STOP_AFTER_S)
            central_system.send_call(
                identity, "RemoteStopTransaction", {"transactionId": transaction_id}
            )

        task = asyncio.get_running_loop().create_task(stop_later())
        background.add(task)
        task.add_done_callback(background.discard)

    central_system.on_status = remote_start_when_preparing
    central_system.on_transaction_started = remote_stop_later

    with tempfile.TemporaryDirectory(prefix="evgw-demo-") as directory:
        await central_system.start()
        ports = [await simulator.start("127.0.0.1", 0) for simulator in simulators]
        token = secrets.token_urlsafe(16)
        gateway = await Gateway.open(
            demo_config(
                ports,
                central_system.url,
                Path(directory) / "demo.sqlite3",
                api_port=api_port,
                api_token=token,
            )
        )
        await _start_api(gateway, out)
        print(
            f"evgw demo: {chargers} simulated chargers, central system at {central_system.url}"
            " (Ctrl-C to stop)",
            file=out,
            flush=True,
        )
        try:
            async with asyncio.timeout(duration_s), asyncio.TaskGroup() as tasks:
                tasks.create_task(gateway.run(), name="gateway")
                for index, simulator in enumerate(simulators):
                    remote = f"CP-{index + 1}" == remote_identity
                    tasks.create_task(_drive(simulator, index, remote), name=f"ev-{index + 1}")
        except TimeoutError:
            pass
        finally:
            for task in background:
                task.cancel()
            await gateway.close()
            for simulator in simulators:
                await simulator.stop()
            await central_system.stop()
            with contextlib.suppress(Exception):
                print("evgw demo: stopped", file=out, flush=True)


async def _start_api(gateway: Gateway, out: TextIO) -> None:
    """Serve the dashboard, on any free port if the configured one is taken; print where."""
    api = gateway.api
    assert api is not None
    try:
        await api.start()
    except OSError:
        api.section = dataclasses.replace(api.section, port=0)
        await api.start()
    token = api.section.users[0].token
    print(
        f"evgw demo: dashboard at {api.url}/ (token {token}); evgw status --url {api.url}"
        f" --token={token}",
        file=out,
        flush=True,
    )


async def _drive(simulator: SimulatedCharger, index: int, remote: bool) -> None:
    """Plug EVs in and out forever, staggered per charger; each visit has its own tag."""
    await asyncio.sleep(2.0 + 3.0 * index)
    for visit in range(1, 10_000):
        tag = None if remote else f"TAG-{index + 1}{visit:03d}"
        # Every third EV needs little energy, so it fills up and shows SuspendedEV.
        energy_needed_wh = 800.0 if visit % 3 == 0 else 20_000.0
        simulator.plug_in(rfid=tag, energy_needed_wh=energy_needed_wh, max_current_a=16.0)
        await asyncio.sleep(PLUGGED_S)
        simulator.unplug()
        await asyncio.sleep(UNPLUGGED_S)
