"""One core charger projected upstream as one OCPP 1.6J charge point.

The identity is the charger's configured id; the URL is the central system's base URL plus
"/" plus the percent-encoded identity; one WebSocket per charger (ocpp.md §1-2).

Behaviour (OCPP 1.6 ed. 2):
- **Registration.** BootNotification first after connecting (it jumps the outbound queue).
  Accepted: Heartbeat at the returned interval, current StatusNotifications for connector 0
  and 1, then everything else. Pending/Rejected: retry after the returned `interval`, and send
  nothing else meanwhile (CALLs from the central system are still answered). Once accepted it
  is not sent again on a reconnect (its content has not changed, ocpp.md §7).
- **Status.** A StatusNotification for every status change the core reports, with the time the
  change happened; connector 0 follows the charger's reachability.
- **Transactions.** StartTransaction when the core starts a session, MeterValues every
  MeterValueSampleInterval during it, StopTransaction when it ends: all through the durable
  queue (`gateway.ocpp.transaction_queue`: persisted before sending, chronological, retried
  per TransactionMessageAttempts/TransactionMessageRetryInterval, bounded, paced), so a
  session that runs while the central system is unreachable, or across a gateway restart,
  arrives afterwards with its original timestamps. Messages queued before the
  StartTransaction is answered carry no transactionId yet; it is filled in when they are sent
  (never -1). A session's Start and Stop are each queued once, ever; at start-up, sessions the
  ledger has but the queue never saw (a crash in between) are queued.
- **Authorization** (this station is the charger's `Authorizer`; `gateway.ocpp.authorization`).
  Online: Authorize.req, unless LocalPreAuthorize and a valid local-list or cache entry.
  Offline (or when Authorize fails): the local list, then the cache (LocalAuthorizeOffline),
  then AllowOfflineTxForUnknownId. The cache learns from Authorize, StartTransaction and
  StopTransaction answers and persists. When the StartTransaction of a session comes back not
  Accepted, the session is stopped (DeAuthorized) with StopTransactionOnInvalidId, else only
  its energy is cut.
- **From the central system.** RemoteStart/StopTransaction, Get/ChangeConfiguration,
  ClearCache, SendLocalList, GetLocalListVersion. Every other 1.6 action is answered
  NotSupported, an unknown one NotImplemented (by the codec).
- **Smart Charging and Reservation** (`gateway.ocpp.v16.smart_charging`): Set/Clear
  ChargingProfile, GetCompositeSchedule, ReserveNow, CancelReservation; a RemoteStart's
  chargingProfile becomes the TxProfile of the session it starts; a StartTransaction that used
  a reservation carries its reservationId.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from gateway.core.charger import ChargerReading
from gateway.core.clock import Clock
from gateway.core.events import (
    ChargerConnectivityChanged,
    SessionEnded,
    SessionMeterSampled,
    SessionStarted,
    SiteEvent,
    StatusChanged,
)
from gateway.core.session import Session, StopReason
from gateway.core.site import CONNECTOR_ID, RemoteStartRefused, Site
from gateway.core.status import ConnectorStatus
from gateway.ocpp import Codec, JsonObject
from gateway.ocpp.authorization import (
    DEFAULT_CACHE_CAPACITY,
    AuthorizationKeys,
    AuthorizationStatus,
    Decision,
    IdTagInfo,
    UpdateStatus,
)
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import FollowUp, after_answer
from gateway.ocpp.file_upload import UploadError, UploadRequest, location_problem, shown, upload
from gateway.ocpp.rpc import DEFAULT_CALL_TIMEOUT_S, CallCancelled, CallFailed, ConnectionLost
from gateway.ocpp.security import UpstreamSecurity
from gateway.ocpp.smart_charging import ProfileRefused
from gateway.ocpp.station import ChargePointIdentity, DiagnosticsProvider, StationCore
from gateway.ocpp.transaction_queue import (
    DEFAULT_QUEUE_LIMIT,
    DEFAULT_REPLAY_INTERVAL_S,
)
from gateway.ocpp.v16 import smart_charging as smart_charging_16
from gateway.ocpp.v16.configuration import StationConfiguration
from gateway.smart_charging import ProfileError
from gateway.store import OutboxMessage, Store

logger = logging.getLogger(__name__)

SUBPROTOCOL: Final = "ocpp1.6"

OUTBOUND_ACTIONS: Final = (
    "Authorize",
    "BootNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)
INBOUND_ACTIONS: Final = (
    "ChangeConfiguration",
    "ClearCache",
    "GetConfiguration",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "SendLocalList",
)

MAINTENANCE_ACTIONS: Final = (
    "ChangeAvailability",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "ExtendedTriggerMessage",
    "FirmwareStatusNotification",
    "GetDiagnostics",
    "GetLog",
    "LogStatusNotification",
    "Reset",
    "SecurityEventNotification",
    "TriggerMessage",
    "UnlockConnector",
)
"""Remote trigger, availability, diagnostics and the security whitepaper's messages (both
directions; the section "maintenance and security" below)."""

STATUS_16: Final[dict[ConnectorStatus, str]] = {
    ConnectorStatus.AVAILABLE: "Available",
    ConnectorStatus.PREPARING: "Preparing",
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
    ConnectorStatus.FINISHING: "Finishing",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
    ConnectorStatus.FAULTED: "Faulted",
    ConnectorStatus.RESERVED: "Reserved",
}

PHASES: Final = ("L1", "L2", "L3")


@functools.cache
def codec16() -> Codec:
    """The 1.6 codec of every station: the actions above are supported, every other 1.6
    action is NotSupported."""
    return Codec(
        SUBPROTOCOL,
        supported_actions=OUTBOUND_ACTIONS
        + INBOUND_ACTIONS
        + MAINTENANCE_ACTIONS
        + smart_charging_16.INBOUND_ACTIONS,
    )


def ocpp_timestamp(at: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, the form central systems parse best."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sampled_values(reading: ChargerReading, phases: int, context: str) -> list[JsonObject]:
    """The SampledValue list for one reading: energy register (Wh), current per phase (A),
    active power (W)."""
    values: list[JsonObject] = [
        {
            "value": f"{reading.energy_wh:.0f}",
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        }
    ]
    for phase, current in zip(PHASES[:phases], reading.current_a, strict=False):
        values.append(
            {
                "value": f"{current:.1f}",
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    values.append(
        {
            "value": f"{reading.power_w:.0f}",
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        }
    )
    return values


class Station16(StationCore):
    """The OCPP 1.6J charge point of one charger. `run()` until cancelled.

    With a `store`, the transaction queue, the authorization cache and the local list are
    durable; without one they live in a private in-memory database for the run."""

    def __init__(
        self,
        site: Site,
        charger_id: str,
        *,
        base_url: str,
        identity: ChargePointIdentity,
        configuration: StationConfiguration,
        store: Store | None = None,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        backoff: ReconnectBackoff | None = None,
        clock: Clock | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        replay_interval_s: float = DEFAULT_REPLAY_INTERVAL_S,
        auth_cache_capacity: int = DEFAULT_CACHE_CAPACITY,
        security: UpstreamSecurity | None = None,
        diagnostics: DiagnosticsProvider | None = None,
    ) -> None:
        super().__init__(
            site,
            charger_id,
            base_url=base_url,
            identity=identity,
            security=security,
            diagnostics=diagnostics,
            codec=codec16(),
            store=store,
            call_timeout_s=call_timeout_s,
            backoff=backoff,
            clock=clock,
            queue_limit=queue_limit,
            replay_interval_s=replay_interval_s,
            auth_cache_capacity=auth_cache_capacity,
        )
        self.configuration = configuration
        self._status_events: asyncio.Queue[SiteEvent] = asyncio.Queue()
        self._last_reported: dict[int, str] = {}
        self._transaction_ids: dict[str, int | None] = {}
        """Session id → upstream transactionId (None while its StartTransaction is queued),
        for every session whose StartTransaction was queued, this run or before."""
        self._handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]] = {
            "RemoteStartTransaction": self._on_remote_start,
            "RemoteStopTransaction": self._on_remote_stop,
            "GetConfiguration": self._on_get_configuration,
            "ChangeConfiguration": self._on_change_configuration,
            "ClearCache": self._on_clear_cache,
            "SendLocalList": self._on_send_local_list,
            "GetLocalListVersion": self._on_get_local_list_version,
        }
        self._handlers.update(self._maintenance_handlers())
        self._handlers.update(smart_charging_16.handlers(self))  # and reservations
        self._diagnostics_status = "Idle"
        self._availability_task: asyncio.Task[None] | None = None

    def _remember_transactions(self, transaction_ids: dict[str, int | None]) -> None:
        self._transaction_ids = transaction_ids

    async def _queue_session_start(self, session: Session) -> None:
        await self._queue_start(session)

    async def _queue_session_end(self, session: Session) -> None:
        await self._queue_stop(session)

    # --- Authorizer ------------------------------------------------------------------------

    # --- settings the shared station logic reads ----------------------------------------

    def _heartbeat_interval_s(self) -> int:
        return self.configuration.heartbeat_interval_s

    def _set_heartbeat_interval_s(self, seconds: int) -> None:
        self.configuration.heartbeat_interval_s = seconds

    def _retry_policy(self) -> tuple[int, float]:
        config = self.configuration
        return config.transaction_message_attempts, config.transaction_message_retry_interval_s

    def _stop_on_invalid_id(self) -> bool:
        return self.configuration.stop_transaction_on_invalid_id

    def _wire_action(self, message: OutboxMessage) -> str:
        return message.action

    def _authorization_keys(self) -> AuthorizationKeys:
        config = self.configuration
        return AuthorizationKeys(
            local_auth_list_enabled=config.local_auth_list_enabled,
            authorization_cache_enabled=config.authorization_cache_enabled,
            local_authorize_offline=config.local_authorize_offline,
            local_pre_authorize=config.local_pre_authorize,
            allow_offline_tx_for_unknown_id=config.allow_offline_tx_for_unknown_id,
        )

    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """Decide on an identifier presented at the charger: Authorize.req online, the local
        list and cache (per the configuration keys) offline or when Authorize fails."""
        online = self.online
        decision = self._decide(id_tag, online=online)
        if decision is Decision.ASK:
            try:
                result = await self.connection.call("Authorize", {"idTag": id_tag})
            except CallFailed as error:
                logger.warning("Authorize failed (%s); deciding locally", error, extra=self._log)
                decision = self._decide(id_tag, online=False)
            else:
                info = IdTagInfo.from_json(result["idTagInfo"])
                await self._learn(id_tag, info)
                return info.valid(self._clock.now())
        logger.info(
            "identifier decided locally",
            extra={**self._log, "online": online, "decision": decision.value},
        )
        return decision is Decision.ACCEPT

    async def _learn(self, id_tag: str, info: IdTagInfo) -> None:
        """Cache an answer of the central system (never for identifiers on the list)."""
        if not self.configuration.authorization_cache_enabled:
            return
        if self.configuration.local_auth_list_enabled and self.local_list.get(id_tag):
            return
        now = self._clock.now()
        evicted = self.cache.learn(id_tag, info, now)
        assert self._store is not None
        await self._store.auth_cache_update(
            self.charger_id, [info.stored(id_tag, updated_at=now)], evicted
        )

    # --- registration and heartbeat ---------------------------------------------------------

    def _boot_payload(self) -> JsonObject:
        payload: JsonObject = {
            "chargePointVendor": self.identity.vendor,
            "chargePointModel": self.identity.model,
        }
        if self.identity.serial_number:
            payload["chargePointSerialNumber"] = self.identity.serial_number
        if self.identity.firmware_version:
            payload["firmwareVersion"] = self.identity.firmware_version
        return payload

    def _forget_reported_statuses(self) -> None:
        self._last_reported.clear()

    async def _report_statuses(self) -> None:
        connector = self._site.connector(self.charger_id)
        self._statuses_reported_at = self._clock.now()
        if connector.status is None:
            return  # not polled yet: the first poll's events will report both connectors
        await self._send_status(0, "Available" if connector.online else "Unavailable")
        await self._send_status(CONNECTOR_ID, STATUS_16[connector.status])

    async def _send_status(
        self,
        connector_id: int,
        status: str,
        *,
        at: datetime | None = None,
        vendor_error_code: int = 0,
        error_code: str = "OtherError",
        info: str | None = None,
    ) -> None:
        if self._last_reported.get(connector_id) == status:
            return
        self._last_reported[connector_id] = status
        payload: JsonObject = {
            "connectorId": connector_id,
            "status": status,
            "errorCode": "NoError",
            "timestamp": ocpp_timestamp(at or self._clock.now()),
        }
        if status == "Faulted":
            payload["errorCode"] = error_code
            if vendor_error_code:
                payload["vendorErrorCode"] = str(vendor_error_code)
        if info:
            payload["info"] = info
        try:
            await self.connection.call("StatusNotification", payload)
        except CallFailed as error:
            logger.warning("StatusNotification failed: %s", error, extra=self._log)

    # --- core events ------------------------------------------------------------------------

    async def _forward_events(self) -> None:
        """Transaction events go to the durable queue at once (registered or not, online or
        not); status events wait for the registration in memory."""
        while True:
            event = await self._events.get()
            try:
                if isinstance(event, SessionStarted):
                    await self._queue_start(event.session)
                elif isinstance(event, SessionMeterSampled):
                    await self._queue_sample(event)
                elif isinstance(event, SessionEnded):
                    await self._queue_stop(event.session)
                else:
                    self._status_events.put_nowait(event)
            except Exception:
                # One bad event must not silence the charge point.
                logger.exception("could not forward %s", type(event).__name__, extra=self._log)

    async def _forward_statuses(self) -> None:
        await self._accepted.wait()
        while True:
            event = await self._status_events.get()
            try:
                await self._forward_status(event)
            except Exception:
                logger.exception("could not forward %s", type(event).__name__, extra=self._log)

    async def _forward_status(self, event: SiteEvent) -> None:
        if isinstance(event, StatusChanged):
            reported_at = self._statuses_reported_at
            if reported_at is not None and event.at < reported_at:
                return  # superseded by the status reported after boot
            info = "charger unreachable" if event.status is ConnectorStatus.UNAVAILABLE else None
            await self._send_status(
                event.connector_id,
                STATUS_16[event.status],
                at=event.at,
                vendor_error_code=event.vendor_error_code,
                error_code=str(event.error_code),
                info=info,
            )
        elif isinstance(event, ChargerConnectivityChanged):
            await self._send_status(
                0,
                "Available" if event.online else "Unavailable",
                at=event.at,
                info=None if event.online else "charger unreachable",
            )

    async def _queue_start(self, session: Session) -> None:
        payload: JsonObject = {
            "connectorId": session.connector_id,
            "idTag": session.id_tag,
            "meterStart": round(session.meter_start_wh),
            "timestamp": ocpp_timestamp(session.started_at),
        }
        if session.reservation_id is not None:
            payload["reservationId"] = session.reservation_id
        self._last_sample_at.setdefault(session.id, self._clock.monotonic())
        queued = await self.outbox.append(
            session.id, "StartTransaction", payload, session.started_at
        )
        if queued is not None:
            self._transaction_ids.setdefault(session.id, None)

    async def _queue_sample(self, event: SessionMeterSampled) -> None:
        interval = self.configuration.meter_value_sample_interval_s
        if interval <= 0:
            return
        now = self._clock.monotonic()
        last = self._last_sample_at.setdefault(event.session.id, now)
        if now - last < interval:
            return
        self._last_sample_at[event.session.id] = now
        payload: JsonObject = {
            "connectorId": event.session.connector_id,
            "meterValue": [
                {
                    "timestamp": ocpp_timestamp(event.at),
                    "sampledValue": sampled_values(event.reading, self._phases, "Sample.Periodic"),
                }
            ],
        }
        await self.outbox.append(event.session.id, "MeterValues", payload, event.at)

    async def _queue_stop(self, session: Session) -> None:
        self._last_sample_at.pop(session.id, None)
        assert session.stopped_at is not None
        assert session.meter_stop_wh is not None
        payload: JsonObject = {
            "idTag": session.id_tag,
            "meterStop": round(session.meter_stop_wh),
            "timestamp": ocpp_timestamp(session.stopped_at),
            "reason": (session.stop_reason or StopReason.OTHER).value,
        }
        await self.outbox.append(session.id, "StopTransaction", payload, session.stopped_at)

    def _transaction_id(self, session: Session) -> int | None:
        known = self._transaction_ids.get(session.id)
        if known is not None:
            return known
        if session.upstream_transaction_id is not None:  # recorded before the queue existed
            with contextlib.suppress(ValueError):
                return int(session.upstream_transaction_id)
        return None

    # --- the transaction queue's sender ---------------------------------------------------

    async def _send_queued_forever(self) -> None:
        """Send the queue's head, one at a time, once registered and connected, paced."""
        while True:
            message = await self.outbox.head()
            await self._accepted.wait()
            await self.connection.wait_connected()
            delay = self.pacer.delay(self._clock.monotonic())
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # look at the head again: the bound may have thinned the queue
            payload = self._wire_payload(message)
            if payload is None:
                await self.outbox.drop(
                    message,
                    "no transactionId: the central system never answered the session's"
                    " StartTransaction (dropped after its last attempt)",
                )
                continue
            self.pacer.sent(self._clock.monotonic())
            try:
                result = await self.connection.call(message.action, payload)
            except (ConnectionLost, CallCancelled):
                # Not a failure to process: sent again on the next connection.
                continue
            except CallFailed as error:
                await self._transmission_failed(message, error)
                continue
            await self._answered(message, result)

    def _wire_payload(self, message: OutboxMessage) -> JsonObject | None:
        """The payload as sent: Stop and MeterValues get the session's transactionId, which
        may have arrived after they were queued. None when there is none."""
        if message.action == "StartTransaction":
            return message.payload
        transaction_id = self._transaction_ids.get(message.session_id)
        if transaction_id is None:
            session = self._site.connector(self.charger_id).session
            if session is not None and session.id == message.session_id:
                transaction_id = self._transaction_id(session)
        if transaction_id is None:
            return None
        return {**message.payload, "transactionId": transaction_id}

    async def _answered(self, message: OutboxMessage, result: JsonObject) -> None:
        if message.action != "StartTransaction":
            await self.outbox.answered(message)
            if message.action == "StopTransaction" and "idTagInfo" in result:
                await self._learn(
                    str(message.payload["idTag"]), IdTagInfo.from_json(result["idTagInfo"])
                )
            return
        transaction_id = int(result["transactionId"])
        # Known in memory before the store write yields: a status sent meanwhile lets the
        # central system answer at once with a RemoteStop naming this id.
        self._transaction_ids[message.session_id] = transaction_id
        await self.outbox.answered(message, transaction_id=transaction_id)
        await self._site.record_upstream_transaction_id(
            self.charger_id, message.session_id, str(transaction_id)
        )
        id_tag = str(message.payload["idTag"])
        info = IdTagInfo.from_json(result["idTagInfo"])
        await self._learn(id_tag, info)
        status = info.effective_status(self._clock.now())
        logger.info(
            "transaction started",
            extra={
                **self._log,
                "session_id": message.session_id,
                "transaction_id": transaction_id,
                "id_tag_status": status,
            },
        )
        if status != AuthorizationStatus.ACCEPTED:
            await self._refused_after_start(message.session_id)

    # --- calls from the central system ----------------------------------------------------

    async def _on_remote_start(self, payload: JsonObject) -> JsonObject:
        connector_id = int(payload.get("connectorId", CONNECTOR_ID))
        id_tag = str(payload["idTag"])
        if "chargingProfile" in payload:
            # Applied as the TxProfile of the session this start begins (1.6 §5.11).
            try:
                self.smart_charging.expect_remote_start_profile(id_tag, payload["chargingProfile"])
            except (ProfileError, ProfileRefused) as error:
                logger.warning("RemoteStartTransaction rejected: %s", error, extra=self._log)
                return {"status": "Rejected"}
        try:
            await self._site.remote_start(self.charger_id, connector_id, id_tag)
        except (RemoteStartRefused, LookupError) as refusal:
            self.smart_charging.forget_remote_start_profile(id_tag)
            logger.info("RemoteStartTransaction rejected: %s", refusal, extra=self._log)
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    async def _on_remote_stop(self, payload: JsonObject) -> JsonObject:
        wanted = int(payload["transactionId"])
        session = self._site.connector(self.charger_id).session
        if session is None or self._transaction_id(session) != wanted:
            return {"status": "Rejected"}
        try:
            await self._site.stop_session(self.charger_id, session.connector_id, StopReason.REMOTE)
        except LookupError:
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    async def _on_get_configuration(self, payload: JsonObject) -> JsonObject:
        known, unknown = self.configuration.get(payload.get("key"))
        answer: JsonObject = {"configurationKey": known}
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    async def _on_change_configuration(self, payload: JsonObject) -> JsonObject:
        key, value = str(payload["key"]), str(payload["value"])
        if key.lower() == "authorizationkey":
            refused = await self.change_password(value)
            return {"status": "Rejected" if refused else "Accepted"}
        outcome = self.configuration.change(key, value)
        if outcome.value == "Accepted":
            self._apply_configuration(key)
        return {"status": outcome.value}

    def _apply_configuration(self, key: str) -> None:
        lowered = key.lower()
        if lowered == "connectiontimeout":
            self._site.set_connection_timeout(
                self.charger_id, self.configuration.connection_timeout_s
            )
        self._settings_changed.set()

    async def _on_clear_cache(self, payload: JsonObject) -> JsonObject:
        self.cache.clear()
        assert self._store is not None
        await self._store.auth_cache_clear(self.charger_id)
        logger.info("authorization cache cleared", extra=self._log)
        return {"status": "Accepted"}

    async def _on_get_local_list_version(self, payload: JsonObject) -> JsonObject:
        if not self.configuration.local_auth_list_enabled:
            return {"listVersion": -1}
        return {"listVersion": self.local_list.reported_version}

    async def _on_send_local_list(self, payload: JsonObject) -> JsonObject:
        if not self.configuration.local_auth_list_enabled:
            return {"status": UpdateStatus.NOT_SUPPORTED.value}
        update = self.local_list.plan(
            str(payload["updateType"]),
            int(payload["listVersion"]),
            list(payload.get("localAuthorizationList") or []),
            max_length=self.configuration.local_auth_list_max_length,
            send_max_length=self.configuration.send_local_list_max_length,
        )
        await self._store_local_list(update)
        logger.info(
            "SendLocalList %s",
            update.status.value,
            extra={
                **self._log,
                "update_type": payload["updateType"],
                "list_version": payload["listVersion"],
                "entries": len(self.local_list.entries),
            },
        )
        return {"status": update.status.value}

    # --- maintenance and security: TriggerMessage, ChangeAvailability, UnlockConnector, Reset,
    # GetDiagnostics (GetLog, DataTransfer and the security events are StationCore's) ---------

    def _maintenance_handlers(self) -> dict[str, Callable[[JsonObject], Awaitable[JsonObject]]]:
        return {
            "TriggerMessage": self._on_trigger_message,
            "ExtendedTriggerMessage": self._on_extended_trigger_message,
            "ChangeAvailability": self._on_change_availability,
            "UnlockConnector": self._on_unlock_connector,
            "Reset": self._on_reset,
            "GetDiagnostics": self._on_get_diagnostics,
        }

    async def _on_trigger_message(self, payload: JsonObject) -> JsonObject:
        requested = str(payload["requestedMessage"])
        connector_id = payload.get("connectorId")
        if connector_id is not None and int(connector_id) not in (0, CONNECTOR_ID):
            return {"status": "Rejected"}
        send: FollowUp | None = {
            "BootNotification": self._triggered_boot,
            "Heartbeat": self._triggered_heartbeat,
            "StatusNotification": lambda: self._triggered_status(connector_id),
            "MeterValues": self._triggered_meter_values,
            "DiagnosticsStatusNotification": lambda: self._call_quietly(
                "DiagnosticsStatusNotification", {"status": self._diagnostics_status}
            ),
            # Nothing ever updates the firmware of a Modbus or MQTT charger from here.
            "FirmwareStatusNotification": lambda: self._call_quietly(
                "FirmwareStatusNotification", {"status": "Idle"}
            ),
        }.get(requested)
        if send is None:
            return {"status": "NotImplemented"}
        after_answer(send)
        logger.info("TriggerMessage %s accepted", requested, extra=self._log)
        return {"status": "Accepted"}

    async def _on_extended_trigger_message(self, payload: JsonObject) -> JsonObject:
        """The security whitepaper's trigger: TriggerMessage's messages (less the
        diagnostics status) plus LogStatusNotification; no certificate signing here."""
        requested = str(payload["requestedMessage"])
        if requested == "LogStatusNotification":
            after_answer(self._trigger_log_status)
            return {"status": "Accepted"}
        if requested in (
            "BootNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
        ):
            return await self._on_trigger_message(payload)
        return {"status": "NotImplemented"}

    async def _call_quietly(self, action: str, payload: JsonObject) -> None:
        try:
            await self.connection.call(action, payload)
        except CallFailed as error:
            logger.warning("%s failed: %s", action, error, extra=self._log)

    async def _triggered_boot(self) -> None:
        result = await self.connection.call("BootNotification", self._boot_payload(), urgent=True)
        interval = int(result["interval"])
        if result["status"] == "Accepted" and interval > 0:
            self._set_heartbeat_interval_s(interval)
            self._settings_changed.set()

    async def _triggered_heartbeat(self) -> None:
        await self._call_quietly("Heartbeat", {})

    async def _triggered_status(self, connector_id: Any) -> None:
        connector = self._site.connector(self.charger_id)
        wanted = (0, CONNECTOR_ID) if connector_id is None else (int(connector_id),)
        for number in wanted:
            self._last_reported.pop(number, None)  # sent even if unchanged
            if number == 0:
                await self._send_status(0, "Available" if connector.online else "Unavailable")
            elif connector.status is not None:
                await self._send_status(CONNECTOR_ID, STATUS_16[connector.status])

    async def _triggered_meter_values(self) -> None:
        connector = self._site.connector(self.charger_id)
        reading = connector.reading
        if reading is None:
            logger.info("triggered MeterValues: no reading yet", extra=self._log)
            return
        payload: JsonObject = {
            "connectorId": CONNECTOR_ID,
            "meterValue": [
                {
                    "timestamp": ocpp_timestamp(self._clock.now()),
                    "sampledValue": sampled_values(reading, self._phases, "Trigger"),
                }
            ],
        }
        session = connector.session
        transaction_id = None if session is None else self._transaction_id(session)
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        await self._call_quietly("MeterValues", payload)

    async def _on_change_availability(self, payload: JsonObject) -> JsonObject:
        connector_id, kind = int(payload["connectorId"]), str(payload["type"])
        if connector_id not in (0, CONNECTOR_ID):
            return {"status": "Rejected"}
        operative = kind == "Operative"
        if self._availability_task is not None:
            self._availability_task.cancel()  # the latest request wins
            self._availability_task = None
        session = self._site.connector(self.charger_id).session
        if not operative and session is not None:
            # 1.6 §5.2: a transaction in progress finishes first; the change is Scheduled.
            # A follow-up of the connection: cancelled with it when the station stops.
            after_answer(functools.partial(self._inoperative_after, session.id))
            logger.info("ChangeAvailability Inoperative scheduled", extra=self._log)
            return {"status": "Scheduled"}
        self._site.set_operative(self.charger_id, operative)
        logger.info("ChangeAvailability %s", kind, extra=self._log)
        return {"status": "Accepted"}

    async def _on_unlock_connector(self, payload: JsonObject) -> JsonObject:
        # Neither Modbus profiles nor the MQTT styles expose a cable-lock command.
        logger.info("UnlockConnector: not supported by the charger", extra=self._log)
        return {"status": "NotSupported"}

    async def _on_reset(self, payload: JsonObject) -> JsonObject:
        # As on 2.0.1: the gateway cannot power-cycle a Modbus or MQTT charger, and restarting
        # its own process would reset every other charger it serves too.
        logger.info("Reset %s rejected", payload["type"], extra=self._log)
        return {"status": "Rejected"}

    async def _on_get_diagnostics(self, payload: JsonObject) -> JsonObject:
        location = str(payload["location"])
        problem = location_problem(location)
        if problem is not None:
            # GetDiagnostics.conf cannot refuse: no fileName says no file will come.
            logger.warning(
                "GetDiagnostics: %s", problem, extra={**self._log, "location": shown(location)}
            )
            return {}
        stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        file_name = f"{self.file_stem}-diagnostics-{stamp}"
        file_name += self.diagnostics_suffix
        request = UploadRequest(
            location,
            file_name,
            retries=int(payload.get("retries", 0)),
            retry_interval_s=float(payload.get("retryInterval", 60)),
        )

        async def deliver() -> None:
            try:
                body = await self.diagnostics_bundle()
            except Exception:
                logger.exception("diagnostics bundle failed", extra=self._log)
                await self._diagnostics_status_is("UploadFailed")
                return
            await self._diagnostics_status_is("Uploading")
            try:
                await upload(request, body)
            except UploadError as error:
                logger.warning("GetDiagnostics upload failed: %s", error, extra=self._log)
                await self._diagnostics_status_is("UploadFailed")
            else:
                await self._diagnostics_status_is("Uploaded")

        after_answer(deliver)
        return {"fileName": file_name}

    async def _diagnostics_status_is(self, status: str) -> None:
        self._diagnostics_status = "Idle" if status != "Uploading" else status
        await self._call_quietly("DiagnosticsStatusNotification", {"status": status})
