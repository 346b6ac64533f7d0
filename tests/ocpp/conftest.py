"""Fixtures of the OCPP tests: a simulated Modbus charger and a central system built on the
`ocpp` package, both on loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.modbus import SimulatedCharger
from tests.ocpp.central_system_ocpp import OcppPackageCsms

SPEED = 10.0
"""Simulated seconds per real second for the charger's EV."""


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatedCharger]:
    charger = SimulatedCharger("generic", speed=SPEED)
    await charger.start("127.0.0.1", 0)
    yield charger
    await charger.stop()


@pytest.fixture
async def csms() -> AsyncIterator[OcppPackageCsms]:
    central_system = OcppPackageCsms()
    await central_system.start()
    yield central_system
    await central_system.stop()
