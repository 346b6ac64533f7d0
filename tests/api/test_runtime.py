"""The API inside the running gateway: a busy address does not stop the chargers being
served, and the API comes up once the address is free."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from pathlib import Path

import aiohttp
import pytest

from gateway.modbus import SimulatedCharger
from gateway.runtime import Gateway
from tests.api.conftest import site_config, until
from tests.ocpp.central_system_ocpp import OcppPackageCsms

TOKEN_ADMIN = "admin-token-for-the-runtime-test"
TOKEN_READ = "read-token-for-the-runtime-test"


async def test_a_busy_address_is_retried_while_the_chargers_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.api")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    csms = OcppPackageCsms()
    await csms.start()
    simulator = SimulatedCharger("generic", speed=10.0)
    charger_port = await simulator.start("127.0.0.1", 0)
    config = site_config([charger_port], csms.url, tmp_path / "s.sqlite3", TOKEN_ADMIN, TOKEN_READ)
    assert config.api is not None
    config = dataclasses.replace(
        config,
        chargers=tuple(dataclasses.replace(c, circuit=None) for c in config.chargers),
        api=dataclasses.replace(config.api, port=port),
    )
    gateway = await Gateway.open(config)
    assert gateway.api is not None
    gateway.api.bind_retry_s = 0.2
    task = asyncio.create_task(gateway.run())
    try:
        await until(lambda: any("cannot listen" in r.getMessage() for r in caplog.records))
        # The site runs on: the charger is polled and presented upstream.
        await until(lambda: gateway.site.connector("CP-1").online)
        await until(lambda: gateway.stations["CP-1"].online)
        assert gateway.api.port is None

        blocker.close()
        await until(lambda: gateway.api is not None and gateway.api.port == port)
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                f"http://127.0.0.1:{port}/api/v1/me",
                headers={"Authorization": f"Bearer {TOKEN_READ}"},
            ) as response,
        ):
            assert (await response.json())["role"] == "read"
    finally:
        blocker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.close()
        await simulator.stop()
        await csms.stop()
