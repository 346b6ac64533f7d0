"""What an OCPP station does whatever its version (1.6J in `v16`, 2.0.1 in `v201`): its life
cycle (load the durable state, take over authorization, run the connection, registration,
event forwarding and the transaction queue side by side), dispatch of the central system's
calls, and offline authorization decisions from the local list and the cache.

Each version's station sets the attributes declared here in its `__init__` and provides the
version-specific hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import quote

from gateway.core.clock import Clock, SystemClock
from gateway.core.events import SiteEvent
from gateway.core.session import StopReason
from gateway.core.site import Site
from gateway.ocpp import Call, Codec, JsonObject
from gateway.ocpp.authorization import (
    AuthorizationCache,
    AuthorizationKeys,
    Decision,
    LocalList,
    decide,
)
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import CallErrorReply, OcppClientConnection
from gateway.ocpp.rpc import CallFailed, ConnectionLost
from gateway.ocpp.transaction_queue import ReplayPacer, TransactionOutbox, retry_wait_s
from gateway.store import OutboxMessage, Store

logger = logging.getLogger(__name__)

BOOT_RETRY_WITHOUT_INTERVAL_S: Final = 60.0
"""Retry wait when a Pending/Rejected boot gives interval 0, or the call failed: the order of
magnitude of a default heartbeat interval, so a central system that is struggling is not
hammered."""


@dataclass(frozen=True, slots=True)
class ChargePointIdentity:
    """What BootNotification says about the charge point (1.6 CiString limits apply and are
    checked by the codec: vendor/model 20, serial 25, firmware 50 characters)."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


def station_url(base_url: str, identity: str) -> str:
    """The central system's base URL + "/" + the percent-encoded identity."""
    return base_url.rstrip("/") + "/" + quote(identity, safe="")


class StationCore(ABC):
    """The version-independent half of a station; see the module docstring."""

    _handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]]

    def __init__(
        self,
        site: Site,
        charger_id: str,
        *,
        base_url: str,
        identity: ChargePointIdentity,
        codec: Codec,
        store: Store | None,
        call_timeout_s: float,
        backoff: ReconnectBackoff | None,
        clock: Clock | None,
        queue_limit: int,
        replay_interval_s: float,
        auth_cache_capacity: int,
    ) -> None:
        self.charger_id = charger_id
        self.identity = identity
        self.backoff = backoff or ReconnectBackoff()
        """The upstream socket's reconnect back-off (tests shorten it)."""
        self.queue_limit = queue_limit
        self.pacer = ReplayPacer(replay_interval_s)
        """The floor between queued transaction messages on the socket."""
        self.cache = AuthorizationCache(auth_cache_capacity)
        self.local_list = LocalList()
        self._site = site
        self._given_store = store
        self._store: Store | None = None
        self._outbox: TransactionOutbox | None = None
        self._clock: Clock = clock or SystemClock()
        self._phases = site.spec(charger_id).phases
        self.connection = OcppClientConnection(
            station_url(base_url, charger_id),
            codec,
            self._on_call,
            identity=charger_id,
            call_timeout_s=call_timeout_s,
            backoff=self.backoff,
        )
        self._events: asyncio.Queue[SiteEvent] = site.subscribe(charger_id)
        self._accepted = asyncio.Event()
        self._loaded = asyncio.Event()
        self._settings_changed = asyncio.Event()
        """Set when the central system changes a setting (the heartbeat interval among them)."""
        self._statuses_reported_at: datetime | None = None
        self._last_sample_at: dict[str, float] = {}
        self._log = {"charger_id": charger_id}

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
    def _boot_payload(self) -> JsonObject: ...

    @abstractmethod
    async def _report_statuses(self) -> None:
        """Report every connector's status (after the boot is accepted)."""

    @abstractmethod
    def _heartbeat_interval_s(self) -> int: ...

    @abstractmethod
    def _set_heartbeat_interval_s(self, seconds: int) -> None: ...

    @abstractmethod
    def _retry_policy(self) -> tuple[int, float]:
        """Transaction messages: (attempts, retry interval in s), from this version's keys."""

    @abstractmethod
    def _stop_on_invalid_id(self) -> bool:
        """Stop a session whose identifier the central system refuses after its start?"""

    @abstractmethod
    def _wire_action(self, message: OutboxMessage) -> str:
        """The action a queued message is sent as."""

    async def _register_then_heartbeat(self) -> None:
        while True:
            await self.connection.wait_connected()
            try:
                result = await self.connection.call(
                    "BootNotification", self._boot_payload(), urgent=True
                )
            except ConnectionLost:
                continue
            except CallFailed as error:
                logger.warning("BootNotification failed: %s", error, extra=self._log)
                await asyncio.sleep(BOOT_RETRY_WITHOUT_INTERVAL_S)
                continue
            status, interval = result["status"], int(result["interval"])
            logger.info("BootNotification %s", status, extra={**self._log, "interval_s": interval})
            if status == "Accepted":
                if interval > 0:
                    self._set_heartbeat_interval_s(interval)
                break
            await asyncio.sleep(interval if interval > 0 else BOOT_RETRY_WITHOUT_INTERVAL_S)
        await self._report_statuses()
        self._accepted.set()
        await self._heartbeat_forever()

    async def _heartbeat_forever(self) -> None:
        while True:
            interval = self._heartbeat_interval_s()
            self._settings_changed.clear()
            timeout = interval if interval > 0 else None  # 0 turns heartbeats off
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._settings_changed.wait()
                continue  # a setting changed: start a new wait with the current interval
            if not self.connection.connected:
                continue  # nobody to tell; a heartbeat queued for later would be stale
            try:
                await self.connection.call("Heartbeat", {})
            except CallFailed as error:
                logger.warning("Heartbeat failed: %s", error, extra=self._log)

    async def _transmission_failed(self, message: OutboxMessage, error: CallFailed) -> None:
        """A queued message was not processed: count the attempt, and wait before the next
        one, or drop the message after the last (the version's attempts and interval keys)."""
        updated = await self.outbox.failed(message)
        attempts, interval_s = self._retry_policy()
        if updated.failures >= attempts:
            await self.outbox.drop(updated, f"given up after {updated.failures} attempts: {error}")
            return
        wait = retry_wait_s(interval_s, updated.failures)
        logger.warning(
            "%s failed (%s); retrying in %d s",
            self._wire_action(message),
            error,
            wait,
            extra={**self._log, "session_id": message.session_id, "failures": updated.failures},
        )
        await asyncio.sleep(wait)

    async def _refused_after_start(self, session_id: str) -> None:
        """The central system did not accept the identifier of a started session (typically
        one started offline): stop it, or only cut its energy, per the version's key
        (StopTransactionOnInvalidId, TxCtrlr.StopTxOnInvalidId)."""
        session = self._site.connector(self.charger_id).session
        if session is None or session.id != session_id:
            return  # already over; its end is queued
        stop = self._stop_on_invalid_id()
        logger.warning(
            "identifier refused after the start: %s",
            "stopping the session" if stop else "cutting the energy",
            extra={**self._log, "session_id": session_id},
        )
        with contextlib.suppress(LookupError):
            if stop:
                await self._site.stop_session(
                    self.charger_id, session.connector_id, StopReason.DEAUTHORIZED
                )
            else:
                await self._site.withhold_energy(self.charger_id, session.connector_id)

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
