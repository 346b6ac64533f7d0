"""One core charger projected upstream as one OCPP 2.0.1 charging station.

Topology (ocpp.md §1, Part 1 §8.4 "one identity per charger"): the identity is the charger's
configured id (at most 48 characters, no ":", checked by the configuration); the URL is the
CSMS's base URL plus "/" plus the percent-encoded identity; one WebSocket per charger with the
subprotocol `ocpp2.0.1`. The station has one EVSE (id 1) with one connector (id 1).

Behaviour (OCPP 2.0.1, the core message set):
- **Provisioning.** BootNotification (reason PowerUp) first after connecting; Pending/Rejected
  are retried after the returned interval while CSMS calls are still answered (B02/B03).
  Accepted: Heartbeat at the returned interval, the connector's current StatusNotification,
  then everything else. Not sent again on a reconnect (its content has not changed, §7).
  GetVariables/SetVariables over the device model (`gateway.ocpp.v201.device_model`).
- **Reset** is answered Rejected (reasonCode UnsupportedRequest). The gateway cannot
  power-cycle a Modbus or MQTT charger, and restarting its own process would reset every
  other charger it serves too, so it schedules nothing it could not carry out.
- **Status.** A StatusNotification for every connector status change; the core's 1.6-grained
  status is projected per chargers.md §2 (`CONNECTOR_STATUS_201`). No NotifyEvent.
- **Transactions.** TransactionEvent Started when the core starts a session (triggerReason
  Authorized, or RemoteStart with the request's remoteStartId), Updated when its
  chargingState changes (ChargingStateChanged) and every TxUpdatedInterval with meter values
  (MeterValuePeriodic), Ended with a stoppedReason when it ends (EVDeparted, RemoteStop,
  StopAuthorized, Deauthorized, ...). The transactionId is the session's UUID. Each event is
  numbered (seqNo 0, 1, 2, ... per transaction), marked `offline: true` when queued without a
  connection, and goes through the durable queue (`gateway.ocpp.transaction_queue`):
  persisted before sending, chronological, retried per MessageAttemptsTransactionEvent /
  MessageAttemptIntervalTransactionEvent, bounded, paced.
- **Authorization** (the charger's `Authorizer`): Authorize with an ISO14443 idToken online;
  offline (or when Authorize fails) the cache and the AuthCtrlr variables decide
  (`gateway.ocpp.authorization`). The cache learns from Authorize and TransactionEvent
  answers. A Started transaction whose idTokenInfo comes back not Accepted is stopped
  (DeAuthorized) with TxCtrlr.StopTxOnInvalidId, else only its energy is cut.
- **From the CSMS.** GetVariables, SetVariables, Reset, RequestStartTransaction,
  RequestStopTransaction, ClearCache, GetLocalListVersion. Every other 2.0.1 action is
  answered NotSupported, an unknown one NotImplemented, a malformed one with the codec's
  2.0.1 error code (FormatViolation, OccurrenceConstraintViolation, ...).
- **Smart Charging and Reservation** (`gateway.ocpp.v201.smart_charging`): Set/Get/Clear
  ChargingProfile(s) with ReportChargingProfiles, GetCompositeSchedule, NotifyChargingLimit and
  ClearedChargingLimit for the local balancer (EMS), ReserveNow, CancelReservation and
  ReservationStatusUpdate; a RequestStartTransaction's chargingProfile becomes the TxProfile of
  its transaction, whose Started event carries the reservationId of a reservation it used.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

from gateway.core.charger import ChargerReading
from gateway.core.clock import Clock
from gateway.core.events import (
    ReservationEnded,
    SessionEnded,
    SessionMeterSampled,
    SessionStarted,
    SiteEvent,
    StatusChanged,
)
from gateway.core.session import Session, SessionOrigin, StopReason
from gateway.core.site import CONNECTOR_ID, RemoteStartRefused, Site
from gateway.core.status import ConnectorStatus
from gateway.ocpp import Codec, JsonObject
from gateway.ocpp.authorization import (
    DEFAULT_CACHE_CAPACITY,
    AuthorizationKeys,
    AuthorizationStatus,
    Decision,
    IdTagInfo,
)
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import FollowUp, after_answer
from gateway.ocpp.rpc import DEFAULT_CALL_TIMEOUT_S, CallCancelled, CallFailed, ConnectionLost
from gateway.ocpp.security import UpstreamSecurity
from gateway.ocpp.smart_charging import ProfileRefused
from gateway.ocpp.station import ChargePointIdentity, DiagnosticsProvider, StationCore
from gateway.ocpp.transaction_queue import (
    DEFAULT_QUEUE_LIMIT,
    DEFAULT_REPLAY_INTERVAL_S,
    TRANSACTION_EVENT,
)
from gateway.ocpp.v16.configuration import LOCAL_AUTH_LIST_MAX_LENGTH, SEND_LOCAL_LIST_MAX_LENGTH
from gateway.ocpp.v16.station import ocpp_timestamp
from gateway.ocpp.v201 import device_model as dm
from gateway.ocpp.v201 import smart_charging as smart_charging_201
from gateway.ocpp.v201.device_model import DeviceModel, VariableKey
from gateway.smart_charging import ProfileError
from gateway.store import OutboxMessage, Store

logger = logging.getLogger(__name__)

SUBPROTOCOL: Final = "ocpp2.0.1"
EVSE_ID: Final = 1

OUTBOUND_ACTIONS: Final = (
    "Authorize",
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "TransactionEvent",
)
INBOUND_ACTIONS: Final = (
    "ClearCache",
    "GetLocalListVersion",
    "GetVariables",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "Reset",
    "SetVariables",
)

MAINTENANCE_ACTIONS: Final = (
    "ChangeAvailability",
    "DataTransfer",
    "FirmwareStatusNotification",
    "GetBaseReport",
    "GetLog",
    "LogStatusNotification",
    "MeterValues",
    "NotifyReport",
    "SecurityEventNotification",
    "SendLocalList",
    "TriggerMessage",
    "UnlockConnector",
)
"""Remote trigger, availability, reports, logs, the local list and security events (both
directions; the section "maintenance and security" below)."""

CONNECTOR_STATUS_201: Final[dict[ConnectorStatus, str]] = {
    ConnectorStatus.AVAILABLE: "Available",
    # A vehicle or a transaction is there (chargers.md §2, a project derivation). Preparing
    # also covers a remote start waiting for its vehicle: the connector is promised.
    ConnectorStatus.PREPARING: "Occupied",
    ConnectorStatus.CHARGING: "Occupied",
    ConnectorStatus.SUSPENDED_EV: "Occupied",
    ConnectorStatus.SUSPENDED_EVSE: "Occupied",
    ConnectorStatus.FINISHING: "Occupied",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
    ConnectorStatus.FAULTED: "Faulted",
    ConnectorStatus.RESERVED: "Reserved",
}

CHARGING_STATE: Final[dict[ConnectorStatus, str]] = {
    ConnectorStatus.PREPARING: "EVConnected",
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
    ConnectorStatus.FINISHING: "EVConnected",
    ConnectorStatus.AVAILABLE: "Idle",
}
"""TransactionEvent chargingState per core status (chargers.md §2); Unavailable and Faulted
say nothing about the vehicle and change nothing."""

STOP_TRIGGER: Final[dict[StopReason, str]] = {
    StopReason.EV_DISCONNECTED: "EVDeparted",
    StopReason.REMOTE: "RemoteStop",
    StopReason.LOCAL: "StopAuthorized",
    StopReason.DEAUTHORIZED: "Deauthorized",
    StopReason.REBOOT: "ResetCommand",
    StopReason.POWER_LOSS: "AbnormalCondition",
    StopReason.OTHER: "AbnormalCondition",
}
"""The Ended event's triggerReason per stop reason (the stoppedReason is the reason's own
spelling, which 2.0.1's ReasonEnumType shares)."""

PHASES: Final = ("L1", "L2", "L3")


@functools.cache
def codec201() -> Codec:
    """The 2.0.1 codec of every station: the actions above are supported, every other 2.0.1
    action is NotSupported."""
    return Codec(
        SUBPROTOCOL,
        supported_actions=OUTBOUND_ACTIONS
        + INBOUND_ACTIONS
        + MAINTENANCE_ACTIONS
        + smart_charging_201.INBOUND_ACTIONS
        + smart_charging_201.OUTBOUND_ACTIONS,
    )


def sampled_values_201(
    reading: ChargerReading | None, energy_wh: float, phases: int, context: str
) -> list[JsonObject]:
    """The sampledValue list of one meterValue: energy register (Wh), and with a reading the
    current per phase (A) and the active power (W). 2.0.1 values are numbers."""
    values: list[JsonObject] = [
        {
            "value": round(energy_wh),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh"},
        }
    ]
    if reading is None:
        return values
    for phase, current in zip(PHASES[:phases], reading.current_a, strict=False):
        values.append(
            {
                "value": round(current, 1),
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unitOfMeasure": {"unit": "A"},
            }
        )
    values.append(
        {
            "value": round(reading.power_w),
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "W"},
        }
    )
    return values


class Station201(StationCore):
    """The OCPP 2.0.1 charging station of one charger. `run()` until cancelled.

    With a `store`, the transaction queue and the authorization cache are durable; without
    one they live in a private in-memory database for the run."""

    def __init__(
        self,
        site: Site,
        charger_id: str,
        *,
        base_url: str,
        identity: ChargePointIdentity,
        device_model: DeviceModel,
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
            codec=codec201(),
            store=store,
            call_timeout_s=call_timeout_s,
            backoff=backoff,
            clock=clock,
            queue_limit=queue_limit,
            replay_interval_s=replay_interval_s,
            auth_cache_capacity=auth_cache_capacity,
        )
        self.device_model = device_model
        device_model.on_change = self.variable_changed
        self.offline_threshold_s = float(device_model.integer(dm.OFFLINE_THRESHOLD))
        # `local_list` stays empty: SendLocalList is not supported on 2.0.1 yet.
        self._status_events: asyncio.Queue[StatusChanged] = asyncio.Queue()
        self._last_reported: str | None = None
        self._last_status: ConnectorStatus | None = None
        self._last_answered: dict[str, int | None] = {}
        """Session id → seqNo of its last answered event (from the store at load)."""
        self._seq_nos: dict[str, int] = {}
        """Session id → the seqNo its next event gets, for the sessions seen this run."""
        self._charging_states: dict[str, str] = {}
        """Active session id → the chargingState last queued for it."""
        self._remote_starts: dict[str, tuple[int, str]] = {}
        """idToken → (remoteStartId, idToken type) of an accepted RequestStartTransaction
        whose transaction has not started yet."""
        self._handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]] = {
            "GetVariables": self._on_get_variables,
            "SetVariables": self._on_set_variables,
            "Reset": self._on_reset,
            "RequestStartTransaction": self._on_request_start,
            "RequestStopTransaction": self._on_request_stop,
            "ClearCache": self._on_clear_cache,
            "GetLocalListVersion": self._on_get_local_list_version,
        }
        self._handlers.update(self._maintenance_handlers())
        self._handlers.update(smart_charging_201.handlers(self))  # and reservations
        self._availability_task: asyncio.Task[None] | None = None

    def _remember_transactions(self, transaction_ids: dict[str, int | None]) -> None:
        self._last_answered = transaction_ids

    async def _queue_session_start(self, session: Session) -> None:
        await self._queue_started(session)

    async def _queue_session_end(self, session: Session) -> None:
        await self._queue_ended(session)

    # --- Authorizer ------------------------------------------------------------------------

    # --- settings the shared station logic reads ----------------------------------------

    def _heartbeat_interval_s(self) -> int:
        return self.device_model.integer(dm.HEARTBEAT_INTERVAL)

    def _set_heartbeat_interval_s(self, seconds: int) -> None:
        self.device_model[dm.HEARTBEAT_INTERVAL] = seconds

    def _retry_policy(self) -> tuple[int, float]:
        model = self.device_model
        return model.integer(dm.MESSAGE_ATTEMPTS), model.integer(dm.MESSAGE_ATTEMPT_INTERVAL)

    def _stop_on_invalid_id(self) -> bool:
        return self.device_model.flag(dm.STOP_TX_ON_INVALID_ID)

    def _wire_action(self, message: OutboxMessage) -> str:
        # Queued under the 1.6 names of their roles (see the queue), sent as TransactionEvent.
        return "TransactionEvent"

    def _authorization_keys(self) -> AuthorizationKeys:
        model = self.device_model
        return AuthorizationKeys(
            local_auth_list_enabled=model.flag(dm.LOCAL_AUTH_LIST_ENABLED),
            authorization_cache_enabled=model.flag(dm.AUTH_CACHE_ENABLED),
            local_authorize_offline=model.flag(dm.LOCAL_AUTHORIZE_OFFLINE),
            local_pre_authorize=model.flag(dm.LOCAL_PRE_AUTHORIZE),
            allow_offline_tx_for_unknown_id=model.flag(dm.OFFLINE_TX_FOR_UNKNOWN_ID),
        )

    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """Decide on an identifier presented at the charger (an RFID card: ISO14443): the
        CSMS's Authorize online, the cache and the AuthCtrlr variables offline or when
        Authorize fails."""
        online = self.online
        decision = self._decide(id_tag, online=online)
        if decision is Decision.ASK:
            try:
                result = await self.connection.call(
                    "Authorize", {"idToken": {"idToken": id_tag, "type": "ISO14443"}}
                )
            except CallFailed as error:
                logger.warning("Authorize failed (%s); deciding locally", error, extra=self._log)
                decision = self._decide(id_tag, online=False)
            else:
                info = IdTagInfo.from_id_token_info(result["idTokenInfo"])
                await self._learn(id_tag, info)
                return info.valid(self._clock.now())
        logger.info(
            "identifier decided locally",
            extra={**self._log, "online": online, "decision": decision.value},
        )
        return decision is Decision.ACCEPT

    async def _learn(self, id_tag: str, info: IdTagInfo) -> None:
        """Cache an answer of the CSMS."""
        if not self.device_model.flag(dm.AUTH_CACHE_ENABLED):
            return
        now = self._clock.now()
        evicted = self.cache.learn(id_tag, info, now)
        assert self._store is not None
        await self._store.auth_cache_update(
            self.charger_id, [info.stored(id_tag, updated_at=now)], evicted
        )

    # --- provisioning and heartbeat ---------------------------------------------------------

    def _boot_payload(self) -> JsonObject:
        station: JsonObject = {"model": self.identity.model, "vendorName": self.identity.vendor}
        if self.identity.serial_number:
            station["serialNumber"] = self.identity.serial_number
        if self.identity.firmware_version:
            station["firmwareVersion"] = self.identity.firmware_version
        return {"chargingStation": station, "reason": "PowerUp"}

    def _forget_reported_statuses(self) -> None:
        self._last_reported = None

    async def _report_statuses(self) -> None:
        connector = self._site.connector(self.charger_id)
        self._statuses_reported_at = self._clock.now()
        if connector.status is None:
            return  # not polled yet: the first poll's event reports it
        await self._send_status(CONNECTOR_STATUS_201[connector.status], self._clock.now())

    async def _send_status(self, status: str, at: datetime) -> None:
        if self._last_reported == status:
            return
        self._last_reported = status
        payload: JsonObject = {
            "timestamp": ocpp_timestamp(at),
            "connectorStatus": status,
            "evseId": EVSE_ID,
            "connectorId": CONNECTOR_ID,
        }
        try:
            await self.connection.call("StatusNotification", payload)
        except CallFailed as error:
            logger.warning("StatusNotification failed: %s", error, extra=self._log)

    # --- core events ------------------------------------------------------------------------

    async def _forward_events(self) -> None:
        """Transaction events go to the durable queue at once (registered or not, online or
        not), in the order the core reported them; status events wait for the boot."""
        while True:
            event = await self._events.get()
            try:
                await self._forward_event(event)
            except Exception:
                # One bad event must not silence the station.
                logger.exception("could not forward %s", type(event).__name__, extra=self._log)

    async def _forward_event(self, event: SiteEvent) -> None:
        if isinstance(event, SessionStarted):
            await self._queue_started(event.session)
        elif isinstance(event, SessionMeterSampled):
            # A transaction resumed after a restart is tracked from its first sample on.
            self._charging_states.setdefault(
                event.session.id,
                CHARGING_STATE.get(self._last_status or ConnectorStatus.PREPARING, "EVConnected"),
            )
            await self._queue_sample(event)
        elif isinstance(event, SessionEnded):
            await self._queue_ended(event.session)
        elif isinstance(event, StatusChanged):
            self._last_status = event.status
            await self._queue_charging_state(event)
            self._status_events.put_nowait(event)
        elif isinstance(event, ReservationEnded):
            smart_charging_201.reservation_ended(self, event)
        # ChargerConnectivityChanged: 2.0.1 has no connector 0; an unreachable charger's
        # connector is reported Unavailable by its StatusChanged.

    async def _forward_statuses(self) -> None:
        await self._accepted.wait()
        while True:
            event = await self._status_events.get()
            reported_at = self._statuses_reported_at
            if reported_at is not None and event.at < reported_at:
                continue  # superseded by the status reported after boot
            await self._send_status(CONNECTOR_STATUS_201[event.status], event.at)

    def _next_seq_no(self, session_id: str) -> int:
        seq_no = self._seq_nos.get(session_id)
        if seq_no is None:
            seq_no = self.outbox.next_seq_no(session_id, self._last_answered.get(session_id))
        self._seq_nos[session_id] = seq_no + 1
        return seq_no

    def _event(
        self,
        session_id: str,
        event_type: str,
        trigger: str,
        at: datetime,
        transaction_info: JsonObject | None = None,
    ) -> JsonObject:
        payload: JsonObject = {
            "eventType": event_type,
            "timestamp": ocpp_timestamp(at),
            "triggerReason": trigger,
            "seqNo": self._next_seq_no(session_id),
            "transactionInfo": {"transactionId": session_id, **(transaction_info or {})},
        }
        if not self.connection.connected:
            payload["offline"] = True
        return payload

    async def _queue_started(self, session: Session) -> None:
        remote = session.origin is SessionOrigin.REMOTE
        info: JsonObject = {}
        state = CHARGING_STATE.get(self._last_status) if self._last_status else None
        info["chargingState"] = state if state and state != "Idle" else "EVConnected"
        remote_start = self._remote_starts.pop(session.id_tag, None) if remote else None
        if remote_start is not None:
            info["remoteStartId"] = remote_start[0]
        self._charging_states[session.id] = info["chargingState"]
        self._last_sample_at.setdefault(session.id, self._clock.monotonic())
        payload = self._event(
            session.id,
            "Started",
            "RemoteStart" if remote else "Authorized",
            session.started_at,
            info,
        )
        # An RFID card is ISO14443; a remote start keeps the type the CSMS gave its idToken.
        token_type = remote_start[1] if remote_start else "Central" if remote else "ISO14443"
        payload["idToken"] = {"idToken": session.id_tag, "type": token_type}
        payload["evse"] = {"id": EVSE_ID, "connectorId": session.connector_id}
        if session.reservation_id is not None:
            payload["reservationId"] = session.reservation_id
        payload["meterValue"] = [
            {
                "timestamp": ocpp_timestamp(session.started_at),
                "sampledValue": sampled_values_201(
                    None, session.meter_start_wh, self._phases, "Transaction.Begin"
                ),
            }
        ]
        queued = await self.outbox.append_event(session.id, payload, session.started_at)
        if queued is None:
            self._seq_nos.pop(session.id, None)  # not queued: the number was not used

    async def _queue_charging_state(self, event: StatusChanged) -> None:
        # The transactions still open as far as the events went (at most one: one connector).
        for session_id, previous in list(self._charging_states.items()):
            state = CHARGING_STATE.get(event.status)
            if state is None or state == "Idle" or state == previous:
                continue
            self._charging_states[session_id] = state
            payload = self._event(
                session_id, "Updated", "ChargingStateChanged", event.at, {"chargingState": state}
            )
            await self.outbox.append_event(session_id, payload, event.at)

    async def _queue_sample(self, event: SessionMeterSampled) -> None:
        interval = self.device_model.integer(dm.TX_UPDATED_INTERVAL)
        if interval <= 0:
            return
        now = self._clock.monotonic()
        last = self._last_sample_at.setdefault(event.session.id, now)
        if now - last < interval:
            return
        self._last_sample_at[event.session.id] = now
        payload = self._event(event.session.id, "Updated", "MeterValuePeriodic", event.at)
        payload["meterValue"] = [
            {
                "timestamp": ocpp_timestamp(event.at),
                "sampledValue": sampled_values_201(
                    event.reading, event.reading.energy_wh, self._phases, "Sample.Periodic"
                ),
            }
        ]
        await self.outbox.append_event(event.session.id, payload, event.at)

    async def _queue_ended(self, session: Session) -> None:
        self._last_sample_at.pop(session.id, None)
        self._charging_states.pop(session.id, None)
        assert session.stopped_at is not None
        assert session.meter_stop_wh is not None
        reason = session.stop_reason or StopReason.OTHER
        info: JsonObject = {"stoppedReason": reason.value}
        if reason is StopReason.EV_DISCONNECTED:
            info["chargingState"] = "Idle"
        payload = self._event(session.id, "Ended", STOP_TRIGGER[reason], session.stopped_at, info)
        payload["meterValue"] = [
            {
                "timestamp": ocpp_timestamp(session.stopped_at),
                "sampledValue": sampled_values_201(
                    None, session.meter_stop_wh, self._phases, "Transaction.End"
                ),
            }
        ]
        await self.outbox.append_event(session.id, payload, session.stopped_at)
        self._seq_nos.pop(session.id, None)

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
            if "eventType" not in message.payload:
                # Queued by the 1.6 station of this charger before the version changed.
                await self.outbox.drop(message, "an OCPP 1.6 message cannot be sent on 2.0.1")
                continue
            self.pacer.sent(self._clock.monotonic())
            try:
                result = await self.connection.call(TRANSACTION_EVENT, message.payload)
            except (ConnectionLost, CallCancelled):
                continue  # not a failure to process: sent again on the next connection
            except CallFailed as error:
                await self._transmission_failed(message, error)
                continue
            await self._answered(message, result)

    async def _answered(self, message: OutboxMessage, result: JsonObject) -> None:
        await self.outbox.answered_event(message)
        self._last_answered[message.session_id] = int(message.payload["seqNo"])
        event_type = message.payload["eventType"]
        if event_type == "Started":
            await self._site.record_upstream_transaction_id(
                self.charger_id, message.session_id, message.session_id
            )
        id_token = message.payload.get("idToken")
        if "idTokenInfo" not in result or not isinstance(id_token, dict):
            return
        info = IdTagInfo.from_id_token_info(result["idTokenInfo"])
        await self._learn(str(id_token["idToken"]), info)
        status = info.effective_status(self._clock.now())
        if status != AuthorizationStatus.ACCEPTED and event_type != "Ended":
            await self._refused_after_start(message.session_id)

    # --- calls from the CSMS ------------------------------------------------------------------

    async def _on_get_variables(self, payload: JsonObject) -> JsonObject:
        return {"getVariableResult": self.device_model.get_variables(payload["getVariableData"])}

    async def _on_set_variables(self, payload: JsonObject) -> JsonObject:
        results: list[JsonObject] = []
        for request in payload["setVariableData"]:
            if self.device_model.is_variable(request, dm.BASIC_AUTH_PASSWORD):
                # Checked, persisted and used from the next connection on (A01); never logged.
                refused = await self.change_password(str(request["attributeValue"]))
                result: JsonObject = {
                    "attributeStatus": "Rejected" if refused else "Accepted",
                    "component": request["component"],
                    "variable": request["variable"],
                }
                if "attributeType" in request:
                    result["attributeType"] = request["attributeType"]
                results.append(result)
            else:
                results.extend(self.device_model.set_variables([request]))
        return {"setVariableResult": results}

    def variable_changed(self, key: VariableKey, value: Any) -> None:
        """Apply a variable the CSMS set (the device model's `on_change`)."""
        if key == dm.EV_CONNECTION_TIMEOUT:
            self._site.set_connection_timeout(self.charger_id, float(value))
        elif key == dm.OFFLINE_THRESHOLD:
            self.offline_threshold_s = float(value)
        self._settings_changed.set()

    async def _on_reset(self, payload: JsonObject) -> JsonObject:
        logger.info("Reset %s rejected", payload["type"], extra=self._log)
        return {
            "status": "Rejected",
            "statusInfo": {
                "reasonCode": "UnsupportedRequest",
                "additionalInfo": "a gateway-hosted station cannot reset its Modbus charger",
            },
        }

    async def _on_request_start(self, payload: JsonObject) -> JsonObject:
        evse_id = payload.get("evseId")
        id_token = str(payload["idToken"]["idToken"])
        if evse_id is not None and int(evse_id) != EVSE_ID:
            return {"status": "Rejected"}
        if "chargingProfile" in payload:
            # Applied as the TxProfile of the transaction this start begins (K05).
            try:
                self.smart_charging.expect_remote_start_profile(
                    id_token, payload["chargingProfile"]
                )
            except (ProfileError, ProfileRefused) as error:
                logger.warning("RequestStartTransaction rejected: %s", error, extra=self._log)
                return {"status": "Rejected"}
        try:
            await self._site.remote_start(self.charger_id, CONNECTOR_ID, id_token)
        except (RemoteStartRefused, LookupError) as refusal:
            self.smart_charging.forget_remote_start_profile(id_token)
            logger.info("RequestStartTransaction rejected: %s", refusal, extra=self._log)
            return {"status": "Rejected"}
        self._remote_starts[id_token] = (
            int(payload["remoteStartId"]),
            str(payload["idToken"]["type"]),
        )
        return {"status": "Accepted"}

    async def _on_request_stop(self, payload: JsonObject) -> JsonObject:
        session = self._site.connector(self.charger_id).session
        if session is None or session.id != payload["transactionId"]:
            return {"status": "Rejected"}
        try:
            await self._site.stop_session(self.charger_id, session.connector_id, StopReason.REMOTE)
        except LookupError:
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    async def _on_clear_cache(self, payload: JsonObject) -> JsonObject:
        if not self.device_model.flag(dm.AUTH_CACHE_ENABLED):
            return {"status": "Rejected"}
        self.cache.clear()
        assert self._store is not None
        await self._store.auth_cache_clear(self.charger_id)
        logger.info("authorization cache cleared", extra=self._log)
        return {"status": "Accepted"}

    async def _on_get_local_list_version(self, payload: JsonObject) -> JsonObject:
        return {"versionNumber": self.local_list.reported_version}

    # --- maintenance and security: TriggerMessage, ChangeAvailability, UnlockConnector,
    # GetBaseReport, SendLocalList (GetLog, DataTransfer and security events: StationCore) -

    def _maintenance_handlers(self) -> dict[str, Callable[[JsonObject], Awaitable[JsonObject]]]:
        return {
            "TriggerMessage": self._on_trigger_message,
            "ChangeAvailability": self._on_change_availability,
            "UnlockConnector": self._on_unlock_connector,
            "GetBaseReport": self._on_get_base_report,
            "SendLocalList": self._on_send_local_list,
        }

    async def _on_trigger_message(self, payload: JsonObject) -> JsonObject:
        requested = str(payload["requestedMessage"])
        evse = payload.get("evse")
        if evse is not None and (
            int(evse["id"]) != EVSE_ID or int(evse.get("connectorId", CONNECTOR_ID)) != CONNECTOR_ID
        ):
            return {"status": "Rejected"}
        send: FollowUp | None
        if requested == "BootNotification":
            send = self._triggered_boot
        elif requested == "Heartbeat":
            send = self._triggered_heartbeat
        elif requested == "StatusNotification":
            send = self._triggered_status
        elif requested == "MeterValues":
            send = self._triggered_meter_values
        elif requested == "LogStatusNotification":
            send = self._trigger_log_status
        elif requested == "FirmwareStatusNotification":
            # Nothing ever updates the firmware of a Modbus or MQTT charger from here.
            send = self._triggered_firmware_status
        elif requested == "TransactionEvent":
            session = self._site.connector(self.charger_id).session
            if session is None:
                return {"status": "Rejected"}  # F06: only with a transaction in progress
            await self._queue_triggered_event(session)
            return {"status": "Accepted"}
        else:
            # Certificates (Sign*) and firmware publishing do not apply to this station.
            return {"status": "NotImplemented"}
        after_answer(send)
        logger.info("TriggerMessage %s accepted", requested, extra=self._log)
        return {"status": "Accepted"}

    async def _call_quietly(self, action: str, payload: JsonObject) -> None:
        try:
            await self.connection.call(action, payload)
        except CallFailed as error:
            logger.warning("%s failed: %s", action, error, extra=self._log)

    async def _triggered_boot(self) -> None:
        payload = {**self._boot_payload(), "reason": "Triggered"}
        result = await self.connection.call("BootNotification", payload, urgent=True)
        interval = int(result["interval"])
        if result["status"] == "Accepted" and interval > 0:
            self._set_heartbeat_interval_s(interval)
            self._settings_changed.set()

    async def _triggered_heartbeat(self) -> None:
        await self._call_quietly("Heartbeat", {})

    async def _triggered_status(self) -> None:
        connector = self._site.connector(self.charger_id)
        if connector.status is None:
            return
        self._last_reported = None  # sent even if unchanged
        await self._send_status(CONNECTOR_STATUS_201[connector.status], self._clock.now())

    async def _triggered_firmware_status(self) -> None:
        await self._call_quietly("FirmwareStatusNotification", {"status": "Idle"})

    async def _triggered_meter_values(self) -> None:
        reading = self._site.connector(self.charger_id).reading
        if reading is None:
            logger.info("triggered MeterValues: no reading yet", extra=self._log)
            return
        await self._call_quietly(
            "MeterValues",
            {
                "evseId": EVSE_ID,
                "meterValue": [
                    {
                        "timestamp": ocpp_timestamp(self._clock.now()),
                        "sampledValue": sampled_values_201(
                            reading, reading.energy_wh, self._phases, "Trigger"
                        ),
                    }
                ],
            },
        )

    async def _queue_triggered_event(self, session: Session) -> None:
        now = self._clock.now()
        payload = self._event(session.id, "Updated", "Trigger", now)
        reading = self._site.connector(self.charger_id).reading
        if reading is not None:
            payload["meterValue"] = [
                {
                    "timestamp": ocpp_timestamp(now),
                    "sampledValue": sampled_values_201(
                        reading, reading.energy_wh, self._phases, "Trigger"
                    ),
                }
            ]
        await self.outbox.append_event(session.id, payload, now)

    async def _on_change_availability(self, payload: JsonObject) -> JsonObject:
        operative = payload["operationalStatus"] == "Operative"
        evse = payload.get("evse")
        if evse is not None and (
            int(evse["id"]) != EVSE_ID or int(evse.get("connectorId", CONNECTOR_ID)) != CONNECTOR_ID
        ):
            return {"status": "Rejected", "statusInfo": {"reasonCode": "UnknownEvse"}}
        if self._availability_task is not None:
            self._availability_task.cancel()  # the latest request wins
            self._availability_task = None
        session = self._site.connector(self.charger_id).session
        if not operative and session is not None:
            # G03.FR.05: a transaction in progress finishes first; the change is Scheduled.
            # A follow-up of the connection: cancelled with it when the station stops.
            after_answer(functools.partial(self._inoperative_after, session.id))
            return {"status": "Scheduled"}
        self._site.set_operative(self.charger_id, operative)
        logger.info("ChangeAvailability %s", payload["operationalStatus"], extra=self._log)
        return {"status": "Accepted"}

    async def _on_unlock_connector(self, payload: JsonObject) -> JsonObject:
        if int(payload["evseId"]) != EVSE_ID or int(payload["connectorId"]) != CONNECTOR_ID:
            return {"status": "UnknownConnector"}
        if self._site.connector(self.charger_id).session is not None:
            return {"status": "OngoingAuthorizedTransaction"}
        # 2.0.1 has no NotSupported here: no Modbus profile or MQTT style has a lock command.
        return {
            "status": "UnlockFailed",
            "statusInfo": {
                "reasonCode": "UnsupportedRequest",
                "additionalInfo": "the charger exposes no cable-lock command",
            },
        }

    async def _on_get_base_report(self, payload: JsonObject) -> JsonObject:
        base, request_id = str(payload["reportBase"]), int(payload["requestId"])
        if base not in ("ConfigurationInventory", "FullInventory"):
            # SummaryInventory reports component availability, which this device model
            # does not describe as components.
            return {"status": "NotSupported"}
        report = self.device_model.report(base)
        if not report:
            return {"status": "EmptyResultSet"}

        async def send() -> None:
            await self._call_quietly(
                "NotifyReport",
                {
                    "requestId": request_id,
                    "generatedAt": ocpp_timestamp(self._clock.now()),
                    "seqNo": 0,
                    "tbc": False,
                    "reportData": report,
                },
            )

        after_answer(send)
        return {"status": "Accepted"}

    async def _on_send_local_list(self, payload: JsonObject) -> JsonObject:
        if not self.device_model.flag(dm.LOCAL_AUTH_LIST_ENABLED):
            return {"status": "Failed", "statusInfo": {"reasonCode": "Disabled"}}
        # The list keeps 1.6-shaped entries: idToken → idTag, idTokenInfo → idTagInfo.
        items: list[JsonObject] = []
        for entry in payload.get("localAuthorizationList") or []:
            item: JsonObject = {"idTag": str(entry["idToken"]["idToken"])}
            info = entry.get("idTokenInfo")
            if info is not None:
                tag_info: JsonObject = {"status": info["status"]}
                if "cacheExpiryDateTime" in info:
                    tag_info["expiryDate"] = info["cacheExpiryDateTime"]
                if "groupIdToken" in info:
                    tag_info["parentIdTag"] = info["groupIdToken"]["idToken"]
                item["idTagInfo"] = tag_info
            items.append(item)
        update = self.local_list.plan(
            str(payload["updateType"]),
            int(payload["versionNumber"]),
            items,
            max_length=LOCAL_AUTH_LIST_MAX_LENGTH,
            send_max_length=SEND_LOCAL_LIST_MAX_LENGTH,
        )
        await self._store_local_list(update)
        logger.info(
            "SendLocalList %s",
            update.status.value,
            extra={**self._log, "entries": len(self.local_list.entries)},
        )
        status = update.status.value
        return {"status": "Failed" if status == "NotSupported" else status}
