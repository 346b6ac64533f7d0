"""Fixtures of the OCPI tests: a real gateway with its OCPI server on a loopback port, three
simulated Modbus TCP chargers, a central system built on the `ocpp` package, and eMSP peers
(`emsp_peer.EmspPeer`) with their own HTTP servers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.config import (
    ChargerSection,
    CircuitSection,
    GatewayConfig,
    GatewaySection,
    UpstreamSection,
)
from gateway.modbus import SimulatedCharger
from gateway.ocpi.config import (
    OcpiChargerSection,
    OcpiLocationSection,
    OcpiPartnerSection,
    OcpiSection,
)
from gateway.runtime import Gateway
from gateway.tariffs.model import Tariff
from tests.ocpi.emsp_peer import EmspPeer
from tests.ocpp.central_system_ocpp import OcppPackageCsms

SPEED = 10.0
"""Simulated seconds per real second for the EVs."""
WITHIN_S = 30.0
"""Generous: the machine is shared; conditions are polled, never waited for blindly."""


async def until(condition: Callable[[], bool], within_s: float = WITHIN_S) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - the states polled offer no event
            await asyncio.sleep(0.05)


@dataclass
class LiveOcpi:
    gateway: Gateway
    simulators: list[SimulatedCharger]
    base: str
    """http://127.0.0.1:<port>"""
    token_a: dict[str, str] = field(default_factory=dict)
    """The token A we issued, per partner name that registers with us."""
    csms: OcppPackageCsms | None = None
    """The central system the chargers' OCPP stations connect to."""

    @property
    def versions_url(self) -> str:
        return f"{self.base}/ocpi/versions"

    def module_url(self, identifier: str) -> str:
        return f"{self.base}/ocpi/2.2.1/{identifier}"


def ocpi_section(
    partners: Sequence[OcpiPartnerSection],
    port: int,
    chargers: dict[str, OcpiChargerSection] | None = None,
) -> OcpiSection:
    return OcpiSection(
        country_code="NL",
        party_id="EVG",
        business_name="Test Depot",
        location=OcpiLocationSection(
            id="DEPOT-1",
            address="Harbour road 1",
            city="Rotterdam",
            country="NLD",
            latitude=51.9,
            longitude=4.48,
            time_zone="Europe/Amsterdam",
            name="Test depot",
        ),
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        chargers=chargers
        or {
            "CP-1": OcpiChargerSection(
                evse_id="NL*EVG*E1",
                capabilities=("RFID_READER", "REMOTE_START_STOP_CAPABLE", "CREDIT_CARD_PAYABLE"),
            )
        },
        partners=tuple(partners),
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def live_ocpi(
    tmp_path: Path,
    *,
    issued: Sequence[str] = ("emsp-a",),
    register_with: Sequence[tuple[str, EmspPeer]] = (),
    chargers: int = 3,
    store_name: str = "ocpi.sqlite3",
    port: int | None = None,
    circuits: Sequence[CircuitSection] = (),
    tariffs: Sequence[Tariff] = (),
    ocpi_chargers: dict[str, OcpiChargerSection] | None = None,
) -> AsyncIterator[LiveOcpi]:
    """A running gateway whose OCPI server issued a token A to each name in `issued`, and
    registers with each (name, peer) in `register_with`."""
    csms = OcppPackageCsms()
    await csms.start()
    simulators = [SimulatedCharger("generic", speed=SPEED) for _ in range(chargers)]
    ports = [await simulator.start("127.0.0.1", 0) for simulator in simulators]
    tokens = {name: secrets.token_urlsafe(24) for name in issued}
    partners = [OcpiPartnerSection(name, ("EMSP",), token_a=tokens[name]) for name in issued]
    partners += [
        OcpiPartnerSection(name, ("EMSP",), token_a=peer.token_a, versions_url=peer.versions_url)
        for name, peer in register_with
    ]
    ocpi_port = port or free_port()
    config = GatewayConfig(
        gateway=GatewaySection(store=tmp_path / store_name),
        upstream=UpstreamSection(url=csms.url, heartbeat_interval_s=30),
        chargers=tuple(
            ChargerSection(
                id=f"CP-{index + 1}",
                host="127.0.0.1",
                port=charger_port,
                poll_interval_s=0.2,
                max_current_a=16.0,
            )
            for index, charger_port in enumerate(ports)
        ),
        ocpi=ocpi_section(partners, ocpi_port, ocpi_chargers),
        circuits=tuple(circuits),
        tariffs=tuple(tariffs),
    )
    gateway = await Gateway.open(config)
    assert gateway.ocpi is not None
    task = asyncio.create_task(gateway.run())
    try:
        await until(lambda: gateway.ocpi is not None and gateway.ocpi.port is not None)
        await until(
            lambda: all(
                gateway.site.connector(f"CP-{i + 1}").status is not None for i in range(chargers)
            )
        )
        yield LiveOcpi(gateway, simulators, f"http://127.0.0.1:{gateway.ocpi.port}", tokens, csms)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.close()
        for simulator in simulators:
            await simulator.stop()
        await csms.stop()


@pytest.fixture
async def peer() -> AsyncIterator[EmspPeer]:
    emsp = EmspPeer()
    await emsp.start()
    try:
        yield emsp
    finally:
        await emsp.stop()


@pytest.fixture
async def registered(tmp_path: Path, peer: EmspPeer) -> AsyncIterator[tuple[LiveOcpi, EmspPeer]]:
    """A gateway and an eMSP that registered with it (it holds token C)."""
    async with live_ocpi(tmp_path) as live:
        reply = await peer.register_with(live.versions_url, live.token_a["emsp-a"])
        assert reply.status == 200, reply
        assert reply.status_code == 1000, reply
        yield live, peer


@dataclass(frozen=True)
class RouteCase:
    module: str
    method: str
    path: str
    """The concrete path, `{params}` filled with schema-valid values."""
    token_a: bool
    has_body: bool
    roles: frozenset[str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def registered_routes() -> list[RouteCase]:
    """Every route the gateway's OCPI server registers (built without running anything: the
    module factories only capture the context)."""
    import re
    from typing import Any, cast

    from gateway.core.site import Site
    from gateway.ocpi.client import OcpiClient
    from gateway.ocpi.partners import PartnerRegistry
    from gateway.ocpi.pushes import Pushes
    from gateway.ocpi.server import OcpiContext, OcpiServer
    from gateway.ocpi.service import module_factories
    from gateway.store import Store

    section = ocpi_section((), 1)
    config = GatewayConfig(
        upstream=UpstreamSection(url="ws://127.0.0.1:1/ocpp"),
        chargers=(ChargerSection(id="CP-1", host="127.0.0.1", port=1, max_current_a=16.0),),
        ocpi=section,
    )
    store = cast(Store, None)  # not touched while building
    partners = PartnerRegistry(store, [])
    client = OcpiClient(country_code="NL", party_id="EVG")
    server = OcpiServer(partners, public_url=section.public_url)
    context = OcpiContext(
        config=config,
        ocpi=section,
        site=Site(),
        store=store,
        partners=partners,
        pushes=Pushes(partners, client),
        client=client,
        public_url=section.public_url,
        server=server,
    )
    cases = []
    for factory in module_factories():
        module = factory(context)
        for route in module.routes:

            def fill(match: re.Match[str], schema: Any = route.path_params) -> str:
                spec = schema[match.group(1)]
                return "X" * max(int(spec.get("minLength", 1)), 1)

            path = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, module.base_path + route.path)
            cases.append(
                RouteCase(
                    module.identifier,
                    route.method,
                    path,
                    route.token_a,
                    route.request_schema is not None,
                    frozenset(module.partner_roles),
                )
            )
    return cases
