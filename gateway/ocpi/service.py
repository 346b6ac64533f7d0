"""The OCPI side of the gateway assembled: partner registry, HTTP client, push queues, the
server with every module registered, and the registrations we start ourselves.

`Gateway` builds it with `OcpiService.open(...)` when the configuration has `[ocpi]`, runs
`run()` in its task group, and `close()`s it on the way out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from gateway.config import GatewayConfig
from gateway.core.site import Site
from gateway.ocpi.client import OcpiClient
from gateway.ocpi.config import OcpiSection
from gateway.ocpi.partners import PartnerRegistry, PartnerStatus, PartyRole
from gateway.ocpi.pushes import Pushes
from gateway.ocpi.server import Module, OcpiContext, OcpiServer
from gateway.store import Store

logger = logging.getLogger("gateway.ocpi")

ModuleFactory = Callable[[OcpiContext], Module]

RESTART_DELAYS_S: Final = (1.0, 5.0, 30.0, 60.0)
"""Waits before listening again or restarting a failed module task."""

REGISTRATION_RETRY_S: Final = (5.0, 30.0, 120.0, 600.0)
"""Waits between attempts to register with a partner that is not reachable yet."""


def module_factories() -> list[ModuleFactory]:
    """Every module the gateway serves, in registration order: add a module's factory here
    (imported inside, so a module may import this file)."""
    from gateway.ocpi.cdrs import cdrs_module
    from gateway.ocpi.charging_profiles import charging_profiles_module
    from gateway.ocpi.commands import commands_module
    from gateway.ocpi.credentials import credentials_module
    from gateway.ocpi.hubclientinfo import hubclientinfo_module
    from gateway.ocpi.locations import locations_module
    from gateway.ocpi.sessions import sessions_module
    from gateway.ocpi.tariffs_module import tariffs_module
    from gateway.ocpi.tokens import tokens_module
    from gateway.ocpi.versions import versions_module

    return [
        versions_module,
        credentials_module,
        locations_module,
        tariffs_module,
        hubclientinfo_module,
        sessions_module,
        cdrs_module,
        tokens_module,
        commands_module,
        charging_profiles_module,
    ]


class OcpiService:
    """The assembled OCPI side. `await open(...)`, `await run()` until cancelled,
    `await close()`."""

    def __init__(self, context: OcpiContext, server: OcpiServer) -> None:
        self.context = context
        self.server = server

    @classmethod
    async def open(
        cls,
        config: GatewayConfig,
        site: Site,
        store: Store,
        *,
        extra_modules: list[ModuleFactory] | None = None,
        balancing: Any = None,
    ) -> OcpiService:
        section = config.ocpi
        if section is None:
            raise ValueError("no [ocpi] table in the configuration")
        partners = await PartnerRegistry.open(store)
        await _configure_partners(partners, section)
        client = OcpiClient(country_code=section.country_code, party_id=section.party_id)
        pushes = Pushes(partners, client)
        server = OcpiServer(partners, public_url=section.public_url)
        context = OcpiContext(
            config=config,
            ocpi=section,
            site=site,
            store=store,
            partners=partners,
            pushes=pushes,
            client=client,
            public_url=section.public_url,
            server=server,
            balancing=balancing,
        )
        for factory in [*module_factories(), *(extra_modules or [])]:
            server.register(factory(context))
        return cls(context, server)

    @property
    def port(self) -> int | None:
        return self.server.port

    async def run(self) -> None:
        """Serve until cancelled: the HTTP server, the modules' background tasks, and the
        registrations with partners we were given a token A for. Nothing here ends the
        gateway: a port that cannot be bound is retried, and a module task that fails is
        logged and restarted (charging goes on without OCPI meanwhile)."""
        try:
            await self._listen()
            async with asyncio.TaskGroup() as tasks:
                for module in self.server.modules.values():
                    if module.run is not None:
                        tasks.create_task(
                            _supervised(module.identifier, module.run),
                            name=f"ocpi-{module.identifier}",
                        )
                for partner in self.context.ocpi.partners:
                    if partner.versions_url is not None:
                        tasks.create_task(
                            self._register_with(partner.name), name=f"ocpi-register-{partner.name}"
                        )
                # Serve until cancelled, also when every task above has finished.
                await asyncio.Event().wait()
        finally:
            await self.server.stop()

    async def _listen(self) -> None:
        section = self.context.ocpi
        attempt = 0
        while True:
            try:
                await self.server.start(section.host, section.port)
                return
            except OSError as error:
                await self.server.stop()
                delay = RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)]
                logger.error(
                    "OCPI server cannot listen: %s",
                    error,
                    extra={"host": section.host, "port": section.port, "retry_in_s": delay},
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.context.pushes.close()
        await self.server.stop()
        await self.context.client.close()

    async def _register_with(self, partner_id: str) -> None:
        from gateway.ocpi.credentials import RegistrationError, register_with

        attempt = 0
        while True:
            partner = self.context.partners.get(partner_id)
            if partner is None or partner.status is not PartnerStatus.PENDING:
                return
            try:
                await register_with(self.context, partner)
                return
            except Exception as error:
                delay = REGISTRATION_RETRY_S[min(attempt, len(REGISTRATION_RETRY_S) - 1)]
                logger.warning(
                    "OCPI registration failed: %s",
                    error,
                    exc_info=not isinstance(error, RegistrationError),
                    extra={"partner": partner_id, "retry_in_s": delay},
                )
                attempt += 1
                await asyncio.sleep(delay)


async def _supervised(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a module's background task; when it fails, log and start it again after a
    growing delay. Returns when the task returns."""
    attempt = 0
    while True:
        try:
            await run()
            return
        except Exception:
            delay = RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)]
            logger.exception(
                "OCPI module task failed; restarting", extra={"module": name, "retry_in_s": delay}
            )
            attempt += 1
            await asyncio.sleep(delay)


async def _configure_partners(partners: PartnerRegistry, section: OcpiSection) -> None:
    for partner in section.partners:
        await partners.configure(
            partner.name,
            token_a=partner.token_a,
            issued_by_us=partner.versions_url is None,
            raw_token=partner.raw_token,
            versions_url=partner.versions_url,
            roles=frozenset(PartyRole(role) for role in partner.roles),
        )
