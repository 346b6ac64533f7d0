"""Fixtures for the Modbus tests: a controllable clock and simulators on ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger, profile_names


class ManualClock:
    """A clock that moves only when told, so the simulator's physics is deterministic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Short timeouts keep failure tests fast; loopback answers in well under a millisecond.
TEST_TIMEOUT_S = 0.3


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=profile_names())
def profile_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sim(profile_name: str, clock: ManualClock) -> AsyncIterator[SimulatedCharger]:
    simulator = SimulatedCharger(profile_name, clock=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def link(sim: SimulatedCharger) -> AsyncIterator[ModbusTcpLink]:
    assert sim.port is not None
    modbus_link = ModbusTcpLink(
        "127.0.0.1",
        sim.port,
        request_timeout_s=TEST_TIMEOUT_S,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    yield modbus_link
    await modbus_link.close()


@pytest.fixture
def charger(link: ModbusTcpLink, sim: SimulatedCharger, clock: ManualClock) -> ModbusCharger:
    # The driver's keep-alive runs on the simulator's clock, so tests control both.
    return ModbusCharger(link, sim.unit_id, sim.profile, clock=clock)
