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
import json
import logging
import re
import ssl
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from websockets.exceptions import InvalidStatus

from gateway.core.clock import Clock, SystemClock
from gateway.core.events import SessionEnded, SiteEvent
from gateway.core.session import Session, StopReason
from gateway.core.site import Site
from gateway.ocpp import Call, Codec, JsonObject
from gateway.ocpp.authorization import (
    AuthorizationCache,
    AuthorizationKeys,
    Decision,
    ListUpdate,
    LocalList,
    UpdateStatus,
    decide,
)
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import (
    CallErrorReply,
    InboundHandler,
    OcppClientConnection,
    StationLink,
    after_answer,
)
from gateway.ocpp.file_upload import UploadError, UploadRequest, location_problem, shown, upload
from gateway.ocpp.rpc import CallFailed, ConnectionLost
from gateway.ocpp.security import SecurityEvent, UpstreamSecurity, password_problem
from gateway.ocpp.smart_charging import StationSmartCharging
from gateway.ocpp.transaction_queue import ReplayPacer, TransactionOutbox, retry_wait_s
from gateway.store import OutboxMessage, Store

logger = logging.getLogger(__name__)

SECURITY_LOG_LENGTH: Final = 1000
"""Security events kept for GetLog SecurityLog (in memory: they are rare, a few per day)."""
DiagnosticsProvider = Callable[[], Awaitable[bytes]]
"""Builds the diagnostics file GetDiagnostics/GetLog upload (the gateway's bundle)."""

OFFLINE_THRESHOLD_S: Final = 60.0
"""After an outage at least this long, every connector's status is reported again
(2.0.1 OfflineThreshold, OCTT TC_B_51/52; ocpp.md §7): a minute, the order of a heartbeat,
since a re-report costs two small messages while a stale status misleads the operator."""

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
    _availability_task: asyncio.Task[None] | None
    """A Scheduled Inoperative waiting for its session to end; each version sets it up."""

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
        security: UpstreamSecurity | None = None,
        diagnostics: DiagnosticsProvider | None = None,
    ) -> None:
        self.charger_id = charger_id
        self.security = security or UpstreamSecurity()
        """The upstream security profile and its credentials."""
        self.ocpp_version = codec.subprotocol.removeprefix("ocpp")
        self.connection_codec = codec
        """The codec of this station's version (its connection's, and a shared station's)."""
        self._password: str | None = (
            self.security.password if self.security.profile.uses_password else None
        )
        self._security_events: asyncio.Queue[JsonObject] = asyncio.Queue()
        self._security_events_waiting: set[str] = set()
        """Types of the queued events (one of each waits at a time)."""
        self._security_log: deque[JsonObject] = deque(maxlen=SECURITY_LOG_LENGTH)
        self._diagnostics = diagnostics
        self._log_upload: tuple[int, asyncio.Task[None]] | None = None
        """(requestId, task) of the GetLog upload in progress."""
        self._common_handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]] = {
            "GetLog": self._on_get_log,
            "DataTransfer": self._on_data_transfer,
        }
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
        self.smart_charging = StationSmartCharging(
            site,
            charger_id,
            version="1.6" if codec.subprotocol == "ocpp1.6" else "2.0.1",
            clock=self._clock,
        )
        """The charging profiles the central system installed, applied to the charger."""
        url = station_url(base_url, charger_id)
        self.connection: StationLink = OcppClientConnection(
            url,
            codec,
            self._on_call,
            identity=charger_id,
            call_timeout_s=call_timeout_s,
            backoff=self.backoff,
            ssl_context=self.security.ssl_context(url),
            password=lambda: self._password,
            on_failure=self._connection_failed,
            listener=self._connection_changed,
        )
        self.offline_threshold_s = OFFLINE_THRESHOLD_S
        """Outages at least this long end with a status re-report (tests shorten it)."""
        self._offline_since: float | None = None
        self._rereports: set[asyncio.Task[None]] = set()
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
            if self.security.profile.uses_password:
                self._password = await store.upstream_password(self.charger_id) or self._password
            self._site.set_authorizer(self.charger_id, self)
            self._loaded.set()
            self.record_security_event(SecurityEvent.STARTUP_OF_THE_DEVICE)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.connection.run(), name=f"ocpp-{self.charger_id}")
                tasks.create_task(self._register_then_heartbeat(), name=f"boot-{self.charger_id}")
                tasks.create_task(self._forward_events(), name=f"events-{self.charger_id}")
                tasks.create_task(self._forward_statuses(), name=f"status-{self.charger_id}")
                tasks.create_task(self._send_queued_forever(), name=f"queue-{self.charger_id}")
                tasks.create_task(self._send_security_events(), name=f"security-{self.charger_id}")
                tasks.create_task(self.smart_charging.run(store), name=f"sc-{self.charger_id}")
        finally:
            self._site.set_authorizer(self.charger_id, None)
            self._site.unsubscribe(self._events)
            if self._given_store is None:
                await store.close()

    @abstractmethod
    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """The site's `Authorizer`: may `id_tag` charge at `charger_id`?"""

    async def _load(self, store: Store) -> None:
        """Take up the station's durable state from `store`: the transaction queue, the
        upstream transaction ids, the authorization cache and the local list. Sessions the
        ledger recorded but whose messages were never queued (the gateway stopped between the
        ledger write and the queue write) are queued now; the store deduplicates against
        events still on their way."""
        self._store = store
        outbox = TransactionOutbox(store, self.charger_id, limit=self.queue_limit)
        await outbox.load()
        self._outbox = outbox
        transactions = await store.upstream_transactions(self.charger_id)
        self._remember_transactions(
            {session_id: row.transaction_id for session_id, row in transactions.items()}
        )
        self.cache.load(await store.auth_cache(self.charger_id))
        version, entries = await store.local_list(self.charger_id)
        self.local_list.load(version, entries)
        for session in await store.sessions(self.charger_id):
            known = transactions.get(session.id)
            if known is None:
                logger.warning(
                    "session whose start was never queued recovered from the ledger",
                    extra={**self._log, "session_id": session.id},
                )
                await self._queue_session_start(session)
            if not session.active and (known is None or not known.stop_queued):
                logger.warning(
                    "ended session whose end was never queued recovered from the ledger",
                    extra={**self._log, "session_id": session.id},
                )
                await self._queue_session_end(session)

    @abstractmethod
    def _remember_transactions(self, transaction_ids: dict[str, int | None]) -> None:
        """What the store knows of each session's upstream transaction (per version)."""

    @abstractmethod
    async def _queue_session_start(self, session: Session) -> None: ...

    @abstractmethod
    async def _queue_session_end(self, session: Session) -> None: ...

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

    # --- topology "one station with many EVSEs" (gateway.ocpp.shared_station) ---------------

    async def handle_call(self, call: Call) -> JsonObject:
        """Answer one CALL of the central system as this station would on its own socket
        (the shared station routes calls here with the connector/EVSE id already mapped)."""
        return await self._on_call(call)

    def upstream_connection(
        self, url: str, identity: str, handler: InboundHandler, *, call_timeout_s: float
    ) -> OcppClientConnection:
        """A connection to the central system as `identity` with this station's security:
        its TLS context, its basic-auth password (as changed by the central system) and its
        security events for failed attempts. For the shared station's one socket."""
        return OcppClientConnection(
            url,
            self.connection_codec,
            handler,
            identity=identity,
            call_timeout_s=call_timeout_s,
            backoff=self.backoff,
            ssl_context=self.security.ssl_context(url),
            password=lambda: self._password,
            on_failure=self._connection_failed,
        )

    async def _on_call(self, call: Call) -> JsonObject:
        handler = self._handlers.get(call.action) or self._common_handlers.get(call.action)
        if handler is None:
            raise CallErrorReply("NotSupported", f"{call.action} is not supported")
        logger.info("← %s", call.action, extra=self._log)
        return await handler(call.payload)

    # --- security: basic-auth password, security events ------------------------------------

    async def change_password(self, password: str) -> str | None:
        """The central system sets a new basic-auth password (1.6 AuthorizationKey, 2.0.1
        BasicAuthPassword): check it against the version's rule, persist it, and use it from
        the next connection on. Returns why it was refused, or None. Never logs it."""
        problem = password_problem(self.ocpp_version, password)
        if problem is not None:
            logger.warning("basic-auth password refused: %s", problem, extra=self._log)
            return problem
        store = self._store
        if store is None:
            return "the station is not running"
        await store.set_upstream_password(self.charger_id, password, self._clock.now())
        self._password = password
        logger.info("basic-auth password changed", extra=self._log)
        self.record_security_event(
            SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, "basic-auth password"
        )
        return None

    def record_security_event(self, event: SecurityEvent, tech_info: str | None = None) -> None:
        """Queue a SecurityEventNotification (sent once registered and connected; kept in
        memory while offline, in order). An event of a type already waiting to be sent is
        logged but not queued again: a refused certificate recurs at every reconnect attempt,
        and the first occurrence is what the central system needs."""
        payload: JsonObject = {
            "type": event.wire_name(self.ocpp_version),
            "timestamp": self._timestamp(self._clock.now()),
        }
        if tech_info:
            payload["techInfo"] = tech_info[:255]  # techInfo is a CiString255
        logger.info("security event %s", payload["type"], extra=self._log)
        self._security_log.append(payload)
        if payload["type"] in self._security_events_waiting:
            return
        self._security_events_waiting.add(payload["type"])
        self._security_events.put_nowait(payload)

    def _connection_failed(self, error: BaseException) -> None:
        if isinstance(error, ssl.SSLCertVerificationError):
            self.record_security_event(
                SecurityEvent.INVALID_SERVER_CERTIFICATE, str(error.verify_message or error)
            )
        elif isinstance(error, InvalidStatus) and error.response.status_code in (401, 403):
            self.record_security_event(
                SecurityEvent.FAILED_TO_AUTHENTICATE, f"HTTP {error.response.status_code}"
            )

    async def _send_security_events(self) -> None:
        while True:
            payload = await self._security_events.get()
            self._security_events_waiting.discard(payload["type"])
            while True:
                await self._accepted.wait()
                await self.connection.wait_connected()
                try:
                    await self.connection.call("SecurityEventNotification", payload)
                except ConnectionLost:
                    continue  # sent again on the next connection
                except CallFailed as error:
                    logger.warning("SecurityEventNotification failed: %s", error, extra=self._log)
                break

    # --- status re-report after an outage ---------------------------------------------------

    def _connection_changed(self, connected: bool) -> None:
        now = self._clock.monotonic()
        if not connected:
            if self._offline_since is None:
                self._offline_since = now
            return
        since, self._offline_since = self._offline_since, None
        if since is None or not self.accepted or now - since < self.offline_threshold_s:
            return
        task = asyncio.get_running_loop().create_task(self._rereport_statuses())
        self._rereports.add(task)
        task.add_done_callback(self._rereports.discard)

    async def _rereport_statuses(self) -> None:
        logger.info("re-reporting connector statuses after an outage", extra=self._log)
        try:
            self._forget_reported_statuses()
            await self._report_statuses()
        except Exception:
            logger.exception("status re-report failed", extra=self._log)

    @abstractmethod
    def _forget_reported_statuses(self) -> None:
        """Make the next status report go out even if unchanged."""

    # --- GetLog, diagnostics, DataTransfer (both versions) ------------------------------------

    async def diagnostics_bundle(self) -> bytes:
        """The diagnostics file: the gateway's bundle (tar.gz) when one was wired in, else
        this station's own state as JSON (never a secret)."""
        if self._diagnostics is not None:
            return await self._diagnostics()
        connector = self._site.connector(self.charger_id)
        session = connector.session
        state: JsonObject = {
            "charger_id": self.charger_id,
            "ocpp_version": self.ocpp_version,
            "security_profile": int(self.security.profile),
            "connected": self.connection.connected,
            "accepted": self.accepted,
            "connector_status": None if connector.status is None else connector.status.value,
            "session_id": None if session is None else session.id,
            "queued_transaction_messages": None if self._outbox is None else len(self.outbox),
            "security_events": list(self._security_log),
            "generated_at": self._timestamp(self._clock.now()),
        }
        return json.dumps(state, indent=2).encode()

    @property
    def file_stem(self) -> str:
        """The charger id as a file name's start: characters outside [A-Za-z0-9._-] become
        "_", so the name needs no quoting in an upload URL or on the receiver's disk."""
        return re.sub(r"[^A-Za-z0-9._-]", "_", self.charger_id)

    @property
    def diagnostics_suffix(self) -> str:
        """The file name ending of `diagnostics_bundle()`'s bytes."""
        return ".json" if self._diagnostics is None else ".tar.gz"

    def _security_log_file(self, oldest: str | None, latest: str | None) -> bytes:
        def within(event: JsonObject) -> bool:
            at = datetime.fromisoformat(str(event["timestamp"]))
            return (oldest is None or at >= datetime.fromisoformat(oldest)) and (
                latest is None or at <= datetime.fromisoformat(latest)
            )

        lines = [json.dumps(event) for event in self._security_log if within(event)]
        return ("\n".join(lines) + "\n").encode() if lines else b""

    async def _on_get_log(self, payload: JsonObject) -> JsonObject:
        log_type, request_id = str(payload["logType"]), int(payload["requestId"])
        log = payload["log"]
        location = str(log["remoteLocation"])
        problem = location_problem(location)
        if problem is not None:
            logger.warning(
                "GetLog rejected: %s", problem, extra={**self._log, "location": shown(location)}
            )
            return {"status": "Rejected"}
        status = "Accepted"
        if self._log_upload is not None and not self._log_upload[1].done():
            self._log_upload[1].cancel()  # 2.0.1 N01.FR.12 / whitepaper: the new one wins
            status = "AcceptedCanceled"
        stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        if log_type == "SecurityLog":
            file_name = f"{self.file_stem}-security-{stamp}.log"
        else:
            file_name = f"{self.file_stem}-diagnostics-{stamp}"
            file_name += self.diagnostics_suffix
        request = UploadRequest(
            location,
            file_name,
            retries=int(payload.get("retries", 0)),
            retry_interval_s=float(payload.get("retryInterval", 60)),
        )

        async def start() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._log_upload = (request_id, task)
            try:
                if log_type == "SecurityLog":
                    body = self._security_log_file(
                        log.get("oldestTimestamp"), log.get("latestTimestamp")
                    )
                else:
                    body = await self.diagnostics_bundle()
            except Exception:
                logger.exception("log file could not be built", extra=self._log)
                await self._send_log_status("UploadFailure", request_id)
                return
            await self._send_log_status("Uploading", request_id)
            try:
                await upload(request, body)
            except UploadError as error:
                logger.warning("GetLog upload failed: %s", error, extra=self._log)
                await self._send_log_status("UploadFailure", request_id)
            else:
                await self._send_log_status("Uploaded", request_id)

        after_answer(start)
        logger.info(
            "GetLog %s", status, extra={**self._log, "log_type": log_type, "request_id": request_id}
        )
        return {"status": status, "filename": file_name}

    async def _send_log_status(self, status: str, request_id: int | None) -> None:
        payload: JsonObject = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        try:
            await self.connection.call("LogStatusNotification", payload)
        except CallFailed as error:
            logger.warning("LogStatusNotification failed: %s", error, extra=self._log)

    async def _trigger_log_status(self) -> None:
        """A triggered LogStatusNotification: Uploading with the request's id while an
        upload runs, else Idle."""
        if self._log_upload is not None and not self._log_upload[1].done():
            await self._send_log_status("Uploading", self._log_upload[0])
        else:
            await self._send_log_status("Idle", None)

    async def _on_data_transfer(self, payload: JsonObject) -> JsonObject:
        # No vendor extension is implemented: the spec's answer for any vendorId.
        logger.info(
            "DataTransfer from an unknown vendor",
            extra={**self._log, "vendor_id": payload.get("vendorId")},
        )
        return {"status": "UnknownVendorId"}

    @staticmethod
    def _timestamp(at: datetime) -> str:
        return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def parent_id_tag(self, id_tag: str) -> str | None:
        """The parent (group) of an identifier, from the local list, else from the cache (which
        learns it from Authorize answers): the site's `ParentIdSource` for reservations."""
        for info in (self.local_list.get(id_tag), self.cache.get(id_tag)):
            if info is not None and info.parent_id_tag is not None:
                return info.parent_id_tag
        return None

    def _decide(self, id_tag: str, *, online: bool) -> Decision:
        return decide(
            id_tag,
            online=online,
            now=self._clock.now(),
            keys=self._authorization_keys(),
            local_list=self.local_list,
            cache=self.cache,
        )

    async def _store_local_list(self, update: ListUpdate) -> None:
        """Keep an Accepted SendLocalList: stored, applied, and its identifiers dropped from
        the cache (the list outranks the cache anyway, and a stale cache entry must not
        resurface if the identifier later leaves the list)."""
        if update.status is not UpdateStatus.ACCEPTED:
            return
        assert update.entries is not None
        assert self._store is not None
        await self._store.local_list_replace(
            self.charger_id,
            update.version,
            [info.stored(id_tag) for id_tag, info in update.entries.items()],
        )
        self.local_list.apply(update)
        removed = self.cache.remove(list(update.entries))
        if removed:
            await self._store.auth_cache_update(self.charger_id, [], removed)

    async def _inoperative_after(self, session_id: str) -> None:
        """A Scheduled ChangeAvailability Inoperative: applied once `session_id` ends."""
        self._availability_task = asyncio.current_task()
        events = self._site.subscribe(self.charger_id)
        try:
            while True:
                session = self._site.connector(self.charger_id).session
                if session is None or session.id != session_id:
                    break
                event = await events.get()
                if isinstance(event, SessionEnded) and event.session.id == session_id:
                    break
            self._site.set_operative(self.charger_id, False)
            logger.info("scheduled Inoperative applied", extra=self._log)
        finally:
            self._site.unsubscribe(events)
