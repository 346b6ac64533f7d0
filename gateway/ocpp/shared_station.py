"""Topology "one station with many EVSEs" (ocpp.md §1, OCPP 2.0.1 Part 1 §8.4): a group of
local chargers presented upstream as ONE station identity on ONE WebSocket, whose connectors
(1.6: connectorId 1..N) or EVSEs (2.0.1: evseId 1..N, connector 1) are those chargers, in the
configured order.

Each charger keeps its own `Station16`/`Station201` (its durable transaction queue keyed by
the charger, its authorization, smart charging and reservations stay as they are); they
share the group's connection through a `MemberLink` each, and the `SharedStation`:

- **Registration.** Sends one BootNotification for the group: the members' BootNotifications
  at start-up are coalesced into one call whose answer they all get. The payload is the first
  member's, with the group's serial number (none unless configured: a charger's serial number
  would misname the group). Heartbeats go only from the first member (the settings are the
  same on all: station-wide changes reach every member); the others are answered locally.
- **Connector 0 (1.6).** The group, i.e. the gateway, reports connector 0 (Available after the
  boot, on TriggerMessage); the members' own connector-0 reports (their charger's
  reachability) are not sent: connector k's status already says Unavailable when the charger
  is unreachable.
- **Ids.** Every outgoing message of member k carrying a connector/EVSE id 1 carries k
  upstream (1.6 `connectorId`; 2.0.1 `evseId` and `evse.id`, wherever they occur); an
  incoming CALL addressed to k reaches member k with 1.
- **Station-wide CALLs** (no connector/EVSE, or 0) get one answer, per action: applied to all
  members with their answers combined (ChangeConfiguration, SetVariables, ClearCache,
  SendLocalList, ChangeAvailability, TxDefault profiles, ClearChargingProfile), asked of the
  members in order until one accepts (RemoteStart without a connector, a reservation of
  connector/EVSE 0 — any free charger —, RemoteStop/RequestStop and CancelReservation by id),
  or answered by the first member (GetConfiguration, GetVariables, GetLocalListVersion,
  Reset, diagnostics, DataTransfer, ...). TriggerMessage without a connector/EVSE: Boot and
  Heartbeat once, StatusNotification, MeterValues and TransactionEvent from every member. A
  2.0.1 GetChargingProfiles without an EVSE gets every member's reports as one report (`tbc`
  until the last). What cannot be answered for a group gets the spec's refusal: a
  station-wide maximum profile (it would have to be split across the chargers) and a
  composite schedule of the whole station are Rejected, an unknown connector/EVSE gets the
  action's refusal.
- **One outstanding CALL** on the socket across all members (their queues, heartbeats,
  statuses): every CALL goes through the one `OcppClientConnection`, whose RPC core sends one
  at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway.ocpp import Call, JsonObject
from gateway.ocpp.connection import OcppClientConnection, after_answer
from gateway.ocpp.rpc import DEFAULT_CALL_TIMEOUT_S, CallFailed, RpcStats
from gateway.ocpp.station import StationCore, station_url

logger = logging.getLogger(__name__)

MEMBER_CONNECTOR: Final = 1
"""The connector (1.6) / EVSE (2.0.1) id every member station uses for its charger."""

ADDRESS_16: Final[dict[str, tuple[str, ...]]] = {
    "RemoteStartTransaction": ("connectorId",),
    "ChangeAvailability": ("connectorId",),
    "UnlockConnector": ("connectorId",),
    "ReserveNow": ("connectorId",),
    "SetChargingProfile": ("connectorId",),
    "ClearChargingProfile": ("connectorId",),
    "GetCompositeSchedule": ("connectorId",),
    "TriggerMessage": ("connectorId",),
}
"""1.6 CALLs addressed to a connector: where the id is."""
ADDRESS_201: Final[dict[str, tuple[str, ...]]] = {
    "RequestStartTransaction": ("evseId",),
    "ChangeAvailability": ("evse", "id"),
    "UnlockConnector": ("evseId",),
    "ReserveNow": ("evseId",),
    "SetChargingProfile": ("evseId",),
    "ClearChargingProfile": ("chargingProfileCriteria", "evseId"),
    "GetChargingProfiles": ("evseId",),
    "GetCompositeSchedule": ("evseId",),
    "TriggerMessage": ("evse", "id"),
}
"""2.0.1 CALLs addressed to an EVSE: where the id is."""

UNKNOWN_CONNECTOR: Final[dict[str, JsonObject]] = {
    "UnlockConnector": {"status": "NotSupported"},  # 1.6 has no "unknown connector" answer
    "ClearChargingProfile": {"status": "Unknown"},
    "GetChargingProfiles": {"status": "NoProfiles"},
}
"""The answer to a CALL addressed to a connector/EVSE the group does not have (others:
{"status": "Rejected"}; 2.0.1 UnlockConnector: UnknownConnector)."""

FAN_OUT: Final = frozenset(
    {
        "ChangeConfiguration",
        "SetVariables",
        "ClearCache",
        "SendLocalList",
        "ChangeAvailability",
        "ClearChargingProfile",
        "SetChargingProfile",
    }
)
"""Station-wide CALLs applied to every member, with one combined answer."""
FIRST_ACCEPTING: Final = frozenset(
    {
        "RemoteStartTransaction",
        "RequestStartTransaction",
        "ReserveNow",
        "RemoteStopTransaction",
        "RequestStopTransaction",
        "CancelReservation",
    }
)
"""Station-wide CALLs that concern one member, found by asking in order until one accepts."""

STATUS_RANK: Final[dict[str, int]] = {
    "Accepted": 0,
    "Scheduled": 1,
    "RebootRequired": 2,
    "NotSupported": 3,
    "VersionMismatch": 4,
    "Unknown": 5,
    "Failed": 6,
    "Rejected": 7,
}
"""Combining fanned-out answers: the group answers the worst one (a change that did not take
everywhere is not Accepted)."""


@dataclass(frozen=True, slots=True)
class SharedStationSpec:
    """One configured group: the shared identity and its chargers (connector/EVSE k is
    `charger_ids[k - 1]`)."""

    identity: str
    charger_ids: tuple[str, ...]
    serial_number: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _remap(
    value: Any, keys: frozenset[str], nested: str | None, mapping: Callable[[int], int]
) -> Any:
    """A copy of `value` with every integer under one of `keys` (and `nested`.id) mapped."""
    if isinstance(value, list):
        return [_remap(item, keys, nested, mapping) for item in value]
    if not isinstance(value, dict):
        return value
    result: JsonObject = {}
    for key, item in value.items():
        if key in keys and isinstance(item, int) and not isinstance(item, bool):
            result[key] = mapping(item)
        elif key == nested and isinstance(item, dict) and isinstance(item.get("id"), int):
            result[key] = {**_remap(item, keys, nested, mapping), "id": mapping(item["id"])}
        else:
            result[key] = _remap(item, keys, nested, mapping)
    return result


def _address(payload: JsonObject, path: tuple[str, ...]) -> int | None:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _readdressed(payload: JsonObject, path: tuple[str, ...], number: int) -> JsonObject:
    head, *rest = path
    if not rest:
        return {**payload, head: number}
    inner = payload.get(head)
    return {
        **payload,
        head: _readdressed(inner if isinstance(inner, dict) else {}, tuple(rest), number),
    }


def _refused(result: JsonObject) -> bool:
    return bool(result.get("attributeStatus") != "Accepted")


def _worst(answers: Sequence[JsonObject]) -> JsonObject:
    return max(answers, key=lambda answer: STATUS_RANK.get(str(answer.get("status")), 7))


class MemberLink:
    """A member station's share of the group's connection (`StationLink`)."""

    def __init__(self, group: SharedStation, number: int) -> None:
        self._group = group
        self.number = number
        """This member's connector/EVSE id upstream."""
        self._stopped = asyncio.Event()

    @property
    def url(self) -> str:
        return self._group.connection.url

    @property
    def identity(self) -> str:
        return self._group.connection.identity

    @property
    def connected(self) -> bool:
        return self._group.connection.connected

    @property
    def stats(self) -> RpcStats:
        """The shared connection's counters (the same for every member)."""
        return self._group.connection.stats

    async def wait_connected(self) -> None:
        await self._group.connection.wait_connected()

    async def run(self) -> None:
        """Nothing to run: the shared station runs the connection. Waits until cancelled."""
        await self._stopped.wait()

    async def call(self, action: str, payload: JsonObject, *, urgent: bool = False) -> JsonObject:
        """Send a CALL of this member through the group's connection, mapped to the group."""
        group = self._group
        if action == "BootNotification":
            return await group.boot(self.number)
        primary = self.number == 1
        if action == "Heartbeat" and not primary:
            return {"currentTime": _now()}  # the first member's heartbeat speaks for the group
        if action == "SecurityEventNotification" and not primary:
            # The socket, its TLS and its password are the group's: the first member's
            # events are the station's. Logged by the member already.
            return {}
        if (
            action == "StatusNotification"
            and group.version == "1.6"
            and payload.get("connectorId") == 0
        ):
            return {}  # connector 0 is the group's (see the module docstring)
        if action == "ReportChargingProfiles":
            payload = group.report_part(self.number, payload)
        return await group.connection.call(
            action, group.outgoing(payload, self.number), urgent=urgent
        )


class SharedStation:
    """One upstream identity for several member stations of the same OCPP version.

    Build the members first (as for station-per-charger), then this: it takes over their
    connections. `run()` runs the shared socket; the members' own `run()` must run too."""

    def __init__(
        self,
        spec: SharedStationSpec,
        members: Sequence[StationCore],
        *,
        base_url: str,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        if not members:
            raise ValueError(f"shared station {spec.identity!r} has no chargers")
        versions = {member.ocpp_version for member in members}
        if len(versions) != 1:
            raise ValueError(f"shared station {spec.identity!r} mixes OCPP versions {versions}")
        self.spec = spec
        self.identity = spec.identity
        self.members: tuple[StationCore, ...] = tuple(members)
        self.version = members[0].ocpp_version
        self._address = ADDRESS_16 if self.version == "1.6" else ADDRESS_201
        self.connection: OcppClientConnection = members[0].upstream_connection(
            station_url(base_url, spec.identity),
            spec.identity,
            self._on_call,
            call_timeout_s=call_timeout_s,
        )
        self.links = tuple(MemberLink(self, number) for number in range(1, len(members) + 1))
        for member, link in zip(members, self.links, strict=True):
            member.connection = link
        self._boot_task: asyncio.Task[JsonObject] | None = None
        self._boot_result: JsonObject | None = None
        self._boot_answered: set[int] = set()
        self._reporting: dict[int, set[int]] = {}
        """GetChargingProfiles requestId → the members whose reports are still to end."""
        self.boots_sent = 0
        """BootNotifications sent for the group (tests, diagnostics)."""
        self._log = {"identity": spec.identity}

    async def run(self) -> None:
        """Serve the group's socket until cancelled, once every member has loaded its
        durable state (a CALL answered before would find no store behind it)."""
        for member in self.members:
            await member.wait_loaded()
        logger.info(
            "shared station",
            extra={**self._log, "chargers": [m.charger_id for m in self.members]},
        )
        try:
            await self.connection.run()
        finally:
            if self._boot_task is not None:
                self._boot_task.cancel()

    # --- registration ------------------------------------------------------------------------

    async def boot(self, number: int) -> JsonObject:
        """Member `number`'s BootNotification: joins the one in flight, or takes the last
        answer it has not had yet (the members ask together at start-up, and again together
        after a Pending/Rejected interval), else sends a new one (a triggered boot)."""
        task = self._boot_task
        if task is not None and not task.done():
            self._boot_answered.add(number)
            return await asyncio.shield(task)
        if self._boot_result is not None and number not in self._boot_answered:
            self._boot_answered.add(number)
            return self._boot_result
        self._boot_answered = {number}
        self._boot_result = None
        task = asyncio.create_task(self._send_boot(), name=f"boot-{self.identity}")
        # Its outcome goes to the members awaiting it; none may be left at shutdown.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._boot_task = task
        return await asyncio.shield(task)

    def _boot_payload(self) -> JsonObject:
        payload: JsonObject = self.members[0]._boot_payload()
        serial = self.spec.serial_number
        if self.version == "1.6":
            payload.pop("chargePointSerialNumber", None)
            if serial:
                payload["chargePointSerialNumber"] = serial
        else:
            station = dict(payload["chargingStation"])
            station.pop("serialNumber", None)
            if serial:
                station["serialNumber"] = serial
            payload["chargingStation"] = station
        return payload

    async def _send_boot(self) -> JsonObject:
        self.boots_sent += 1
        result = await self.connection.call("BootNotification", self._boot_payload(), urgent=True)
        if result.get("status") == "Accepted" and self.version == "1.6":
            await self.report_connector_zero()
        self._boot_result = result
        return result

    async def report_connector_zero(self) -> None:
        """1.6 connector 0, the group's controller (the gateway): Available while it serves."""
        try:
            await self.connection.call(
                "StatusNotification",
                {
                    "connectorId": 0,
                    "status": "Available",
                    "errorCode": "NoError",
                    "timestamp": _now(),
                },
            )
        except CallFailed as error:
            logger.warning("StatusNotification of connector 0 failed: %s", error, extra=self._log)

    def report_part(self, number: int, payload: JsonObject) -> JsonObject:
        """A member's ReportChargingProfiles for a station-wide GetChargingProfiles: every
        member ends its own report; the group's ends with the last member's (tbc until then)."""
        request_id = payload.get("requestId")
        if not isinstance(request_id, int):
            return payload
        waiting = self._reporting.get(request_id)
        if waiting is None or payload.get("tbc"):
            return payload
        waiting.discard(number)
        if waiting:
            return {**payload, "tbc": True}
        del self._reporting[request_id]
        return payload

    # --- id mapping ----------------------------------------------------------------------------

    def outgoing(self, payload: JsonObject, number: int) -> JsonObject:
        """Member `number`'s payload with its connector/EVSE id 1 as `number`."""
        return self._mapped(payload, lambda value: number if value == MEMBER_CONNECTOR else value)

    def _incoming(self, payload: JsonObject, number: int) -> JsonObject:
        return self._mapped(payload, lambda value: MEMBER_CONNECTOR if value == number else value)

    def _mapped(self, payload: JsonObject, mapping: Callable[[int], int]) -> JsonObject:
        if self.version == "1.6":
            return dict(_remap(payload, frozenset({"connectorId"}), None, mapping))
        return dict(_remap(payload, frozenset({"evseId"}), "evse", mapping))

    # --- calls from the central system ----------------------------------------------------

    async def _on_call(self, call: Call) -> JsonObject:
        payload = call.payload
        path = self._address.get(call.action)
        number = None if path is None else _address(payload, path)
        if number is not None and number != 0:
            if not 1 <= number <= len(self.members):
                logger.info(
                    "%s for a connector the station does not have",
                    call.action,
                    extra={**self._log, "connector": number},
                )
                return self._unknown_connector(call.action)
            return await self._ask(number, call.action, self._incoming(payload, number))
        return await self._station_wide(call, path)

    def _unknown_connector(self, action: str) -> JsonObject:
        if action == "UnlockConnector" and self.version != "1.6":
            return {"status": "UnknownConnector"}
        return dict(UNKNOWN_CONNECTOR.get(action, {"status": "Rejected"}))

    async def _ask(self, number: int, action: str, payload: JsonObject) -> JsonObject:
        """Member `number`'s answer to a CALL (its ids mapped back to the group's)."""
        member = self.members[number - 1]
        answer = await member.handle_call(Call(f"{self.identity}-{number}", action, payload))
        if action == "ReserveNow" and answer.get("status") == "Accepted":
            await self._replaced_elsewhere(number, payload["reservationId"])
        return self.outgoing(answer, number)

    async def _replaced_elsewhere(self, number: int, reservation_id: Any) -> None:
        """A reservation id names one reservation in the station (1.6 §5.13): a new
        one replaces one of that id on any other connector/EVSE of the group."""
        for other, member in enumerate(self.members, start=1):
            if other == number:
                continue
            cancel = Call(
                f"{self.identity}-{other}", "CancelReservation", {"reservationId": reservation_id}
            )
            answer = await member.handle_call(cancel)
            if answer.get("status") == "Accepted":
                logger.info(
                    "reservation moved to connector %d",
                    number,
                    extra={**self._log, "reservation_id": reservation_id, "from": other},
                )

    async def _station_wide(self, call: Call, path: tuple[str, ...] | None) -> JsonObject:
        action, payload = call.action, call.payload
        if action in ("SetVariables", "GetVariables"):
            return await self._variables(action, payload)
        if action == "TriggerMessage":
            return await self._trigger(payload, path)
        if action == "GetCompositeSchedule" or (
            action == "SetChargingProfile" and self._station_maximum(payload)
        ):
            logger.info(
                "%s for the whole station rejected: the group has no single schedule",
                action,
                extra=self._log,
            )
            return {"status": "Rejected"}
        if action == "ReserveNow" and path is not None and _address(payload, path) == 0:
            # 1.6 connector 0, "any connector": each member has one, and may not accept 0
            # (ReserveConnectorZeroSupported); the first that can take it does.
            payload = _readdressed(payload, path, MEMBER_CONNECTOR)
        if action == "GetChargingProfiles" and "evseId" not in payload:
            return await self._charging_profiles(payload)
        # GetChargingProfiles of EVSE 0 falls through to the first member: station-wide
        # profiles reached every member alike (SetChargingProfile of EVSE 0 fans out).
        if action in FAN_OUT:
            answers = [
                await self._ask(number, action, payload)
                for number in range(1, len(self.members) + 1)
            ]
            if action == "ClearChargingProfile":
                # Cleared wherever a profile matched: Accepted if on any member (Unknown
                # means that no profile matched at all, in both versions).
                accepted = [a for a in answers if a.get("status") == "Accepted"]
                return accepted[0] if accepted else answers[0]
            return _worst(answers)
        if action in FIRST_ACCEPTING:
            answer: JsonObject = {"status": "Rejected"}
            for number in range(1, len(self.members) + 1):
                answer = await self._ask(number, action, payload)
                if answer.get("status") == "Accepted":
                    break
            return answer
        return await self._ask(1, action, payload)

    async def _charging_profiles(self, payload: JsonObject) -> JsonObject:
        """2.0.1 GetChargingProfiles of every EVSE: each member with matching profiles
        reports them; the reports make one (see `report_part`)."""
        request_id = int(payload["requestId"])
        reporting: set[int] = set()
        for number in range(1, len(self.members) + 1):
            answer = await self._ask(number, "GetChargingProfiles", payload)
            if answer.get("status") == "Accepted":
                reporting.add(number)
        if not reporting:
            return {"status": "NoProfiles"}
        self._reporting[request_id] = reporting
        return {"status": "Accepted"}

    def _station_maximum(self, payload: JsonObject) -> bool:
        profile = payload.get("csChargingProfiles") or payload.get("chargingProfile") or {}
        purpose = profile.get("chargingProfilePurpose")
        return purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile")

    async def _trigger(self, payload: JsonObject, path: tuple[str, ...] | None) -> JsonObject:
        requested = str(payload["requestedMessage"])
        named = None if path is None else _address(payload, path)
        if requested == "StatusNotification" and self.version == "1.6":
            if named is None:
                answers = [
                    await self._ask(number, "TriggerMessage", payload)
                    for number in range(1, len(self.members) + 1)
                ]
                answer = _worst(answers)
            else:  # connector 0: the group's own
                answer = {"status": "Accepted"}
            if answer.get("status") == "Accepted":
                after_answer(self.report_connector_zero)
            return answer
        if requested in ("StatusNotification", "MeterValues", "TransactionEvent") and named is None:
            answers = [
                await self._ask(number, "TriggerMessage", payload)
                for number in range(1, len(self.members) + 1)
            ]
            if requested == "TransactionEvent":
                # 2.0.1 F06: every transaction in progress; Rejected only when there is none.
                accepted = [a for a in answers if a.get("status") == "Accepted"]
                return accepted[0] if accepted else answers[0]
            return _worst(answers)
        return await self._ask(1, "TriggerMessage", payload)

    async def _variables(self, action: str, payload: JsonObject) -> JsonObject:
        """2.0.1 Get/SetVariables element by element: one naming EVSE k goes to member k,
        one without an EVSE to every member (Set) or the first (Get); the results keep the
        request's order and components."""
        list_key, result_key = (
            ("setVariableData", "setVariableResult")
            if action == "SetVariables"
            else ("getVariableData", "getVariableResult")
        )
        requests: list[JsonObject] = list(payload[list_key])
        everyone = range(1, len(self.members) + 1)
        targets: list[list[int]] = []
        for request in requests:
            evse = request.get("component", {}).get("evse")
            if isinstance(evse, dict) and "id" in evse:
                number = int(evse["id"])
                targets.append([number] if 1 <= number <= len(self.members) else [])
            else:
                targets.append(list(everyone) if action == "SetVariables" else [1])
        per_member: dict[int, list[int]] = {}
        for index, numbers in enumerate(targets):
            for number in numbers:
                per_member.setdefault(number, []).append(index)
        answers: dict[int, list[JsonObject]] = {index: [] for index in range(len(requests))}
        for number, indexes in sorted(per_member.items()):
            sub = {list_key: [self._incoming(requests[index], number) for index in indexes]}
            answer = await self.members[number - 1].handle_call(
                Call(f"{self.identity}-{number}", action, sub)
            )
            for index, member_result in zip(indexes, answer[result_key], strict=True):
                answers[index].append(member_result)
        results: list[JsonObject] = []
        for index, request in enumerate(requests):
            found = answers[index]
            if not found:
                result: JsonObject = {"attributeStatus": "UnknownComponent"}
            elif action == "GetVariables":
                result = dict(found[0])
            else:
                refused: JsonObject = max(found, key=_refused)  # one refusal refuses
                result = dict(refused)
            result["component"] = request["component"]
            result["variable"] = request["variable"]
            if "attributeType" in request:
                result["attributeType"] = request["attributeType"]
            results.append(result)
        return {result_key: results}


__all__ = ["MEMBER_CONNECTOR", "MemberLink", "SharedStation", "SharedStationSpec"]
