"""End to end: four real pymodbus simulators under one 32 A fuse, the site polling them over
Modbus TCP and the balancing loop writing their setpoints, wired as `evgw run` wires them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.balancing import BalancedCharger, BalancingController, BalancingLoop, Circuit
from gateway.balancing.planner import PlannerSettings
from gateway.config import (
    ChargerSection,
    CircuitSection,
    GatewayConfig,
    GatewaySection,
    UpstreamSection,
)
from gateway.core.site import ChargerSpec, Site
from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger
from gateway.runtime import Gateway

FUSE_A = 32.0
CHARGERS = 4
FAILSAFE_A = 8.0
"""4 x 8 A = the fuse: the failsafe sum the configuration check allows."""
WATCHDOG_S = 4.0
"""Short, so the test sees keep-alives (every 2 s) keeping the simulators' watchdogs quiet."""
FAST_RAMP = PlannerSettings(ramp_a_per_s=50.0)
"""Raises in one tick, so the test takes seconds (ramping itself is unit-tested)."""


class SharedClock:
    """One time base for every simulator, so their write logs can be merged in order."""

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.frozen = True

    def __call__(self) -> float:
        return self.origin if self.frozen else time.monotonic()


@contextlib.asynccontextmanager
async def balanced_site(
    failsafe_a: float = FAILSAFE_A,
) -> AsyncIterator[tuple[list[SimulatedCharger], BalancingLoop]]:
    clock = SharedClock()
    sims = [SimulatedCharger("generic", clock=clock) for _ in range(CHARGERS)]
    clock.frozen = False  # every simulator has the same origin
    site = Site()
    links: list[ModbusTcpLink] = []
    for index, sim in enumerate(sims):
        port = await sim.start()
        link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=0.5)
        links.append(link)
        site.add_charger(
            ChargerSpec(f"CP-{index}", max_current_a=16.0, poll_interval_s=0.1),
            ModbusCharger(link, None, sim.profile, name=f"CP-{index}"),
        )
    controller = BalancingController(
        [Circuit("fuse", None, (FUSE_A, FUSE_A, FUSE_A))],
        [
            BalancedCharger(
                f"CP-{index}",
                "fuse",
                max_current_a=16.0,
                failsafe_current_a=failsafe_a,
                watchdog_timeout_s=WATCHDOG_S,
            )
            for index in range(CHARGERS)
        ],
        FAST_RAMP,
    )
    loop = BalancingLoop(site, controller, interval_s=1.0)
    tasks = [asyncio.create_task(site.run()), asyncio.create_task(loop.run())]
    try:
        yield sims, loop
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            await link.close()
        for sim in sims:
            await sim.stop()


async def until(condition: Callable[[], bool], within_s: float = 8.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def setpoint_sums(sims: list[SimulatedCharger]) -> list[float]:
    """The sum of the setpoints after every setpoint write any simulator received, in time
    order (the shared clock orders writes across simulators)."""
    events = sorted(
        (write.at_s, index, float(write.value))
        for index, sim in enumerate(sims)
        for write in sim.writes
        if write.register == sim.profile.current.register
    )
    current = [0.0] * len(sims)
    sums = []
    for _, index, amps in events:
        current[index] = amps
        sums.append(sum(current))
    return sums


async def test_setpoints_share_the_fuse_and_rebalance_when_an_ev_leaves() -> None:
    async with balanced_site() as (sims, loop):
        await until(lambda: all(sim.watchdog_timeout_s == WATCHDOG_S for sim in sims))
        assert all(sim.failsafe_current_a == FAILSAFE_A for sim in sims)

        for index, sim in enumerate(sims):
            sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=50_000)
        # Fair share: 32 A / 4 = 8 A each.
        await until(lambda: all(sim.setpoint_a == 8.0 for sim in sims))
        assert "saturated" in loop.status("CP-0").reason
        await until(lambda: all(sim.current_a > 0 for sim in sims))

        sims[0].unplug()
        # The three left share the fuse: 10.6-10.7 A each, the rounding within the fuse.
        await until(lambda: all(sim.setpoint_a >= 10.6 for sim in sims[1:]))
        assert sims[0].setpoint_a == 0.0
        assert sum(sim.setpoint_a for sim in sims) <= FUSE_A

        # Keep-alives feed the watchdogs (4 s) while nothing changes.
        await asyncio.sleep(WATCHDOG_S + 1.0)
        assert not any(sim.watchdog_tripped for sim in sims)

    sums = setpoint_sums(sims)
    assert sums, "no setpoint was written"
    assert max(sums) <= FUSE_A + 1e-9, max(sums)


async def test_an_offline_charger_keeps_its_share_until_its_failsafe_applies() -> None:
    async with balanced_site(failsafe_a=6.0) as (sims, loop):
        for index, sim in enumerate(sims):
            sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=50_000)
        await until(lambda: all(sim.setpoint_a == 8.0 for sim in sims))

        await sims[3].stop()  # the charger stops answering; its EV charges on at 8 A
        await until(lambda: "offline" in loop.status("CP-3").reason)
        assert "8 A kept reserved" in loop.status("CP-3").reason
        await asyncio.sleep(1.5)  # more than a tick: nobody was handed its 8 A
        assert all(sim.setpoint_a == 8.0 for sim in sims[:3])

        # Its watchdog (4 s) drops it to its 6 A failsafe; only then are the 2 A shared.
        await until(lambda: all(sim.setpoint_a >= 8.6 for sim in sims[:3]))
        assert sims[3].setpoint_a == 6.0  # reading it brings the physics up to date
        assert sims[3].watchdog_tripped
        assert sum(sim.setpoint_a for sim in sims) <= FUSE_A


async def test_a_rebooted_charger_gets_its_failsafe_and_setpoint_again() -> None:
    async with balanced_site() as (sims, loop):
        await until(lambda: all(sim.watchdog_timeout_s == WATCHDOG_S for sim in sims))
        for index, sim in enumerate(sims):
            sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=50_000)
        await until(lambda: all(sim.setpoint_a == 8.0 for sim in sims))

        port = sims[0].port
        assert port is not None
        await sims[0].stop()
        await until(lambda: "offline" in loop.status("CP-0").reason)
        sims[0].reboot()
        assert (sims[0].failsafe_current_a, sims[0].watchdog_timeout_s) == (0.0, 0.0)
        await sims[0].start("127.0.0.1", port)

        # Back: the loop programs the watchdog and the failsafe current again and restores
        # the balanced setpoint.
        await until(lambda: sims[0].watchdog_timeout_s == WATCHDOG_S)
        assert sims[0].failsafe_current_a == FAILSAFE_A
        await until(lambda: sims[0].setpoint_a == 8.0)
        assert sum(sim.setpoint_a for sim in sims) <= FUSE_A


async def test_the_gateway_balances_only_when_circuits_are_configured(tmp_path: Path) -> None:
    charger = ChargerSection(id="CP-1", host="127.0.0.1", port=1502, failsafe_current_a=6.0)
    plain = GatewayConfig(
        upstream=UpstreamSection(url="ws://127.0.0.1:1/ocpp"),
        chargers=(charger,),
        gateway=GatewaySection(store=tmp_path / "plain.sqlite3"),
    )
    gateway = await Gateway.open(plain)
    try:
        assert gateway.balancing is None
        assert gateway.site.connector("CP-1").allocated_current_a is None
    finally:
        await gateway.close()

    balanced = dataclasses.replace(
        plain,
        gateway=GatewaySection(store=tmp_path / "balanced.sqlite3"),
        circuits=(CircuitSection(id="fuse", max_current_a=(FUSE_A, FUSE_A, FUSE_A)),),
    )
    gateway = await Gateway.open(balanced)
    try:
        assert gateway.balancing is not None
        assert gateway.balancing.controller.chargers["CP-1"].circuit == "fuse"
        # Sessions start paused until the loop grants current.
        assert gateway.site.connector("CP-1").allocated_current_a == 0.0
        assert gateway.balancing.status("CP-1").reason == "not balanced yet"
    finally:
        await gateway.close()


async def test_caps_from_several_sources_and_a_circuit_limit_apply_on_top() -> None:
    async with balanced_site() as (sims, loop):
        for index, sim in enumerate(sims):
            sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=50_000)
        await until(lambda: all(sim.setpoint_a == 8.0 for sim in sims))

        # Two sources cap CP-0: the tighter one applies; the others share what it frees.
        loop.set_charger_cap("CP-0", "ocpp", 6.5)
        loop.set_charger_cap("CP-0", "local-api", 7.0)
        await until(lambda: sims[0].setpoint_a == 6.5)
        await until(lambda: all(sim.setpoint_a >= 8.5 for sim in sims[1:]))
        assert "cap" in loop.status("CP-0").reason
        loop.set_charger_cap("CP-0", "ocpp", None)
        await until(lambda: sims[0].setpoint_a == 7.0)
        # A cap below the pilot's 6 A pauses the charger.
        loop.set_charger_cap("CP-0", "local-api", 3.0)
        await until(lambda: sims[0].setpoint_a == 0.0)
        loop.set_charger_cap("CP-0", "local-api", None)

        # A capacity-tariff limit of 24 A on the fuse: four sessions at 6 A.
        loop.set_circuit_limit("fuse", "tariff", (24.0, 24.0, 24.0))
        await until(lambda: all(sim.setpoint_a == 6.0 for sim in sims))
        loop.set_circuit_limit("fuse", "tariff", None)
        await until(lambda: all(sim.setpoint_a == 8.0 for sim in sims))

        with pytest.raises(LookupError):
            loop.set_charger_cap("CP-9", "ocpp", 6.0)
        with pytest.raises(ValueError, match="non-negative"):
            loop.set_circuit_limit("fuse", "tariff", (-1.0, 0.0, 0.0))
