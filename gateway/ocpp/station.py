"""What an OCPP station does whatever its version (1.6J in `v16`, 2.0.1 in `v201`): its life
cycle (load the durable state, take over authorization, run the connection, registration,
event forwarding and the transaction queue side by side), dispatch of the central system's
calls, and offline authorization decisions from the local list and the cache.

Each version's station sets the attributes declared here in its `__init__` and provides the
version-specific hooks.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from gateway.core.clock import Clock
from gateway.core.events import SiteEvent
from gateway.core.site import Site
from gateway.ocpp import Call, JsonObject
from gateway.ocpp.authorization import (
    AuthorizationCache,
    AuthorizationKeys,
    Decision,
    LocalList,
    decide,
)
from gateway.ocpp.connection import CallErrorReply, OcppClientConnection
from gateway.ocpp.transaction_queue import TransactionOutbox
from gateway.store import Store

logger = logging.getLogger(__name__)


class StationCore(ABC):
    """The version-independent half of a station; see the module docstring."""

    charger_id: str
    connection: OcppClientConnection
    cache: AuthorizationCache
    local_list: LocalList
    _site: Site
    _given_store: Store | None
    _outbox: TransactionOutbox | None
    _clock: Clock
    _events: asyncio.Queue[SiteEvent]
    _accepted: asyncio.Event
    _loaded: asyncio.Event
    _handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]]
    _log: dict[str, str]

    @property
    def accepted(self) -> bool:
        """Whether the central system has accepted the BootNotification."""
        return self._accepted.is_set()

    @property
    def online(self) -> bool:
        """Registered with, and connected to, the central system."""
        return self.accepted and self.connection.connected

    @property
    def outbox(self) -> TransactionOutbox:
        """The transaction queue (once `run()` has loaded it)."""
        if self._outbox is None:
            raise RuntimeError("the station is not running")
        return self._outbox

    async def wait_loaded(self) -> None:
        """Until `run()` has loaded the durable state and taken over authorization."""
        await self._loaded.wait()

    async def run(self) -> None:
        """Serve the central system until cancelled. Without a store of its own the station
        keeps its queue and authorization data in memory."""
        store = self._given_store or await Store.open(":memory:")
        try:
            await self._load(store)
            self._site.set_authorizer(self.charger_id, self)
            self._loaded.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.connection.run(), name=f"ocpp-{self.charger_id}")
                tasks.create_task(self._register_then_heartbeat(), name=f"boot-{self.charger_id}")
                tasks.create_task(self._forward_events(), name=f"events-{self.charger_id}")
                tasks.create_task(self._forward_statuses(), name=f"status-{self.charger_id}")
                tasks.create_task(self._send_queued_forever(), name=f"queue-{self.charger_id}")
        finally:
            self._site.set_authorizer(self.charger_id, None)
            self._site.unsubscribe(self._events)
            if self._given_store is None:
                await store.close()

    @abstractmethod
    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """The site's `Authorizer`: may `id_tag` charge at `charger_id`?"""

    @abstractmethod
    async def _load(self, store: Store) -> None:
        """Load the queue and the authorization data from `store`."""

    @abstractmethod
    async def _register_then_heartbeat(self) -> None: ...

    @abstractmethod
    async def _forward_events(self) -> None: ...

    @abstractmethod
    async def _forward_statuses(self) -> None: ...

    @abstractmethod
    async def _send_queued_forever(self) -> None: ...

    @abstractmethod
    def _authorization_keys(self) -> AuthorizationKeys:
        """This version's configuration keys for offline authorization."""

    async def _on_call(self, call: Call) -> JsonObject:
        handler = self._handlers.get(call.action)
        if handler is None:
            raise CallErrorReply("NotSupported", f"{call.action} is not supported")
        logger.info("← %s", call.action, extra=self._log)
        return await handler(call.payload)

    def _decide(self, id_tag: str, *, online: bool) -> Decision:
        return decide(
            id_tag,
            online=online,
            now=self._clock.now(),
            keys=self._authorization_keys(),
            local_list=self.local_list,
            cache=self.cache,
        )
