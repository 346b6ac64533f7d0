"""OCPI 2.2.1 Commands (we are Receiver): START_SESSION, STOP_SESSION, RESERVE_NOW,
CANCEL_RESERVATION, UNLOCK_CONNECTOR (mod_commands §13).

Each command is answered at once with a CommandResponse (ACCEPTED, REJECTED, NOT_SUPPORTED or
UNKNOWN_SESSION, with the `timeout` within which the result follows), then carried out
against the core and its CommandResult POSTed to the command's `response_url` through the
partner's push queue (nobody retries it: ocpi.md §4).

- **START_SESSION** goes through the same core path as an OCPP RemoteStartTransaction
  (`Site.remote_start`), so the session is an OCPP transaction upstream too. The token is not
  re-validated (mod_commands §13.1); it is granted to the session (`SessionBook.grant`), whose
  owner, cdr_token and authorization_reference it becomes, auth_method COMMAND. Result:
  ACCEPTED (the charger takes the session, or waits for the vehicle within its connection
  timeout), EVSE_OCCUPIED (a session is active), EVSE_INOPERATIVE (unreachable, faulted, out
  of service), REJECTED (anything else the core refuses).
- **STOP_SESSION** of one of the caller's active sessions (`Site.stop_session`, reason
  Remote); UNKNOWN_SESSION for a session that is not active or not the caller's.
- **RESERVE_NOW / CANCEL_RESERVATION** through the core's reservations (`Site.reserve`,
  `Site.cancel_reservation`: the site lets only the reserving token, or its group, start
  there, and ends the reservation at its expiry). Results: ACCEPTED, EVSE_OCCUPIED,
  EVSE_INOPERATIVE, REJECTED; UNKNOWN_RESERVATION for a cancel of nothing. OCPI reservation
  ids are remapped to per-charger integers (`charger_reservation_id`). A reservation the
  core removes (the charger faulted) gets CANCELED_RESERVATION at its response_url.
- **UNLOCK_CONNECTOR**: the gateway's chargers (Modbus, MQTT) have no remote unlock, so
  NOT_SUPPORTED once the location and EVSE are known (2003 for an unknown location).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.core.events import ReservationEnded
from gateway.core.reservations import ReservationEndReason
from gateway.core.session import StopReason
from gateway.core.site import CONNECTOR_ID, RemoteStartRefused, Site
from gateway.ocpi.sessions import SessionBook
from gateway.ocpi.tokens import AuthMethod, Grant, id_tag_for, validate_token
from gateway.ocpi.transport import OcpiStatus, invalid, parse_datetime

if TYPE_CHECKING:
    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest

logger = logging.getLogger(__name__)

RESERVATION_SOURCE: Final = "ocpi"
RESERVATION_ID_BASE: Final = 1 << 30
"""OCPI reservation ids become integers in [2^30, 2^31): inside OCPP's 32-bit signed
reservationId, and above the small counters central systems use for their own."""

COMMAND_TIMEOUT_S: Final = 30
"""CommandResponse.timeout: the core answers from local state at once, the result follows
within a poll or two; 30 s leaves room for a slow charger bus and a busy push queue."""


class CommandType(StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(StrEnum):
    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class EvseLookup(Protocol):
    """Our Location and which charger an EVSE uid stands for."""

    @property
    def location_id(self) -> str: ...

    def charger_of(self, evse_uid: str) -> str | None: ...

    def evse_uids(self) -> list[str]: ...


ResultSender = Callable[[str, dict[str, Any]], None]
"""Posts a CommandResult (the JSON) to a response_url; never blocks, never raises."""


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """The synchronous answer: the OCPI status code and the CommandResponse."""

    status_code: int
    response: dict[str, Any]


def charger_reservation_id(owner: tuple[str, str], ocpi_id: str) -> int:
    """The per-charger integer for an eMSP's reservation id (mod_commands §13.3.4: the
    eMSP's id never reaches a charger). Stable, so a RESERVE_NOW with the same id replaces
    the reservation and CANCEL_RESERVATION finds it, also after a restart; the eMSP's party
    is part of it, so one eMSP cannot touch another's reservation."""
    digest = hashlib.sha256(f"{owner[0]}*{owner[1]}*{ocpi_id}".encode()).digest()
    return RESERVATION_ID_BASE + int.from_bytes(digest[:4], "big") % RESERVATION_ID_BASE


_RESERVATION_RESULTS: Final[dict[str, CommandResultType]] = {
    "Accepted": CommandResultType.ACCEPTED,
    "Occupied": CommandResultType.EVSE_OCCUPIED,
    "Faulted": CommandResultType.EVSE_INOPERATIVE,
    "Unavailable": CommandResultType.EVSE_INOPERATIVE,
    "Rejected": CommandResultType.REJECTED,
}
"""The core's (OCPP's) ReservationStatus as a CommandResult."""


def command_response(result: CommandResponseType, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"result": result.value, "timeout": COMMAND_TIMEOUT_S}
    if message:
        body["message"] = [{"language": "en", "text": message[:512]}]
    return body


def command_result(result: CommandResultType, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"result": result.value}
    if message:
        body["message"] = [{"language": "en", "text": message[:512]}]
    return body


class Commands:
    """Carries out the commands of one site; see the module docstring."""

    def __init__(
        self,
        site: Site,
        sessions: SessionBook,
        evses: EvseLookup,
        *,
        token_commanded: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._token_commanded = token_commanded
        """Told of each token a START_SESSION or RESERVE_NOW carries (no real-time
        authorization of it soon after: `TokenAuthorization.commanded`)."""
        self._site = site
        self._sessions = sessions
        self._evses = evses
        self._tasks: set[asyncio.Task[None]] = set()
        self._reservations: dict[tuple[str, int], tuple[str, ResultSender]] = {}
        """(charger, reservation id) → the RESERVE_NOW's response_url and partner."""

    async def handle(
        self,
        command: str,
        body: Any,
        owners: Collection[tuple[str, str]],
        send_result: ResultSender,
    ) -> CommandAnswer:
        """Check `body` for `command`, answer, and schedule the execution whose result goes
        to `send_result`. Raises `OcpiError` 2001 for a malformed body."""
        if command not in CommandType.__members__:
            raise invalid(f"command: must be one of {', '.join(CommandType)}")
        if not isinstance(body, dict):
            raise invalid(f"{command}: body must be a JSON object")
        response_url = body.get("response_url")
        if not isinstance(response_url, str) or not response_url.startswith(
            ("http://", "https://")
        ):
            raise invalid(f"{command}.response_url: must be an http(s) URL")
        kind = CommandType(command)
        if kind is CommandType.START_SESSION:
            return self._start_session(body, response_url, send_result)
        if kind is CommandType.STOP_SESSION:
            return await self._stop_session(body, owners, response_url, send_result)
        if kind is CommandType.UNLOCK_CONNECTOR:
            return self._unlock_connector(body)
        if kind is CommandType.RESERVE_NOW:
            return self._reserve_now(body, owners, response_url, send_result)
        return self._cancel_reservation(body, owners, response_url, send_result)

    async def close(self) -> None:
        """Wait for the commands being carried out (their results go out)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- START_SESSION -------------------------------------------------------------------

    def _start_session(
        self, body: Mapping[str, Any], response_url: str, send_result: ResultSender
    ) -> CommandAnswer:
        token = validate_token(body.get("token"), partial=False)
        reference = _optional_string(body, "authorization_reference", 36)
        _optional_string(body, "connector_id", 36)
        unknown = self._check_location(body)
        if unknown is not None:
            return unknown
        evse_uid = _optional_string(body, "evse_uid", 36)
        if evse_uid is None:
            # 2.2.1 lets the eMSP omit the EVSE; we can choose only when there is one.
            uids = self._evses.evse_uids()
            if len(uids) != 1:
                return CommandAnswer(
                    OcpiStatus.SUCCESS,
                    command_response(CommandResponseType.REJECTED, "evse_uid required"),
                )
            evse_uid = uids[0]
        charger_id = self._evses.charger_of(evse_uid)
        if charger_id is None:
            return CommandAnswer(
                OcpiStatus.SUCCESS,
                command_response(CommandResponseType.REJECTED, f"unknown EVSE {evse_uid}"),
            )
        id_tag = id_tag_for(token)
        grant = Grant(dict(token), AuthMethod.COMMAND, reference)
        if self._token_commanded is not None:
            self._token_commanded(token)

        async def execute() -> dict[str, Any]:
            self._sessions.grant(charger_id, id_tag, grant)
            try:
                await self._site.remote_start(charger_id, CONNECTOR_ID, id_tag)
            except RemoteStartRefused as refusal:
                reason = str(refusal)
                if "active" in reason:
                    return command_result(CommandResultType.EVSE_OCCUPIED, reason)
                if any(word in reason for word in ("unreachable", "faulted", "inoperative")):
                    return command_result(CommandResultType.EVSE_INOPERATIVE, reason)
                return command_result(CommandResultType.REJECTED, reason)
            except LookupError as error:
                return command_result(CommandResultType.REJECTED, str(error))
            return command_result(CommandResultType.ACCEPTED)

        self._run(CommandType.START_SESSION, execute, response_url, send_result)
        return CommandAnswer(OcpiStatus.SUCCESS, command_response(CommandResponseType.ACCEPTED))

    # --- STOP_SESSION --------------------------------------------------------------------

    async def _stop_session(
        self,
        body: Mapping[str, Any],
        owners: Collection[tuple[str, str]],
        response_url: str,
        send_result: ResultSender,
    ) -> CommandAnswer:
        session_id = _required_string(body, "session_id", 36)
        record = await self._sessions.record(session_id)
        # Another eMSP's session is as unknown to the caller as a session that never was.
        if record is None or not record.session.active or record.owner not in owners:
            return CommandAnswer(
                OcpiStatus.SUCCESS, command_response(CommandResponseType.UNKNOWN_SESSION)
            )
        session = record.session

        async def execute() -> dict[str, Any]:
            try:
                await self._site.stop_session(
                    session.charger_id, session.connector_id, StopReason.REMOTE
                )
            except LookupError as error:
                return command_result(CommandResultType.FAILED, str(error))
            return command_result(CommandResultType.ACCEPTED)

        self._run(CommandType.STOP_SESSION, execute, response_url, send_result)
        return CommandAnswer(OcpiStatus.SUCCESS, command_response(CommandResponseType.ACCEPTED))

    # --- UNLOCK_CONNECTOR, reservations ---------------------------------------------------

    def _unlock_connector(self, body: Mapping[str, Any]) -> CommandAnswer:
        _required_string(body, "evse_uid", 36)
        _required_string(body, "connector_id", 36)
        unknown = self._check_location(body)
        if unknown is not None:
            return unknown
        return CommandAnswer(
            OcpiStatus.SUCCESS,
            command_response(
                CommandResponseType.NOT_SUPPORTED, "the charger cannot unlock remotely"
            ),
        )

    def _reserve_now(
        self,
        body: Mapping[str, Any],
        owners: Collection[tuple[str, str]],
        response_url: str,
        send_result: ResultSender,
    ) -> CommandAnswer:
        ocpi_id = _required_string(body, "reservation_id", 36)
        token = validate_token(body.get("token"), partial=False)
        expiry_text = _required_string(body, "expiry_date", 64)
        try:
            expires_at = parse_datetime(expiry_text)
        except ValueError:
            raise invalid("RESERVE_NOW.expiry_date: not an RFC 3339 DateTime") from None
        unknown = self._check_location(body)
        if unknown is not None:
            return unknown
        charger_id = self._single_charger(body)
        if charger_id is None:
            return CommandAnswer(
                OcpiStatus.SUCCESS,
                command_response(CommandResponseType.REJECTED, "evse_uid required"),
            )
        owner = (str(token["country_code"]), str(token["party_id"]))
        reservation_id = charger_reservation_id(owner, ocpi_id)
        if self._token_commanded is not None:
            self._token_commanded(token)
        group = token.get("group_id")
        parent = str(group)[:20] if group else None

        async def execute() -> dict[str, Any]:
            status = await self._site.reserve(
                charger_id,
                CONNECTOR_ID,
                reservation_id,
                id_tag_for(token),
                parent,
                expires_at,
                RESERVATION_SOURCE,
            )
            result = _RESERVATION_RESULTS.get(status.value, CommandResultType.REJECTED)
            if result is CommandResultType.ACCEPTED:
                self._reservations[(charger_id, reservation_id)] = (response_url, send_result)
            return command_result(result, None if status.value == "Accepted" else status.value)

        self._run(CommandType.RESERVE_NOW, execute, response_url, send_result)
        return CommandAnswer(OcpiStatus.SUCCESS, command_response(CommandResponseType.ACCEPTED))

    def _cancel_reservation(
        self,
        body: Mapping[str, Any],
        owners: Collection[tuple[str, str]],
        response_url: str,
        send_result: ResultSender,
    ) -> CommandAnswer:
        ocpi_id = _required_string(body, "reservation_id", 36)
        candidates = {charger_reservation_id(owner, ocpi_id) for owner in owners}

        async def execute() -> dict[str, Any]:
            for charger_id in self._site.charger_ids:
                held = self._site.reservation(charger_id)
                if (
                    held is not None
                    and held.source == RESERVATION_SOURCE
                    and held.reservation_id in candidates
                ):
                    # Cancelled on request: no CANCELED_RESERVATION to the original URL.
                    self._reservations.pop((charger_id, held.reservation_id), None)
                    if await self._site.cancel_reservation(charger_id, held.reservation_id):
                        return command_result(CommandResultType.ACCEPTED)
            return command_result(CommandResultType.UNKNOWN_RESERVATION)

        self._run(CommandType.CANCEL_RESERVATION, execute, response_url, send_result)
        return CommandAnswer(OcpiStatus.SUCCESS, command_response(CommandResponseType.ACCEPTED))

    async def run(self) -> None:
        """Tell the eMSP when one of its reservations ends on our side (the charger faulted
        or was taken away): CANCELED_RESERVATION to the RESERVE_NOW's response_url
        (mod_commands §13.1); until cancelled."""
        events = self._site.subscribe()
        try:
            while True:
                event = await events.get()
                if not isinstance(event, ReservationEnded):
                    continue
                reservation = event.reservation
                key = (reservation.charger_id, reservation.reservation_id)
                target = self._reservations.pop(key, None)
                if target is not None and event.reason is ReservationEndReason.REMOVED:
                    url, send = target
                    send(url, command_result(CommandResultType.CANCELED_RESERVATION))
        finally:
            self._site.unsubscribe(events)

    def _single_charger(self, body: Mapping[str, Any]) -> str | None:
        evse_uid = body.get("evse_uid")
        if isinstance(evse_uid, str):
            return self._evses.charger_of(evse_uid)
        uids = self._evses.evse_uids()
        return self._evses.charger_of(uids[0]) if len(uids) == 1 else None

    # --- helpers -------------------------------------------------------------------------

    def _check_location(self, body: Mapping[str, Any]) -> CommandAnswer | None:
        location_id = _required_string(body, "location_id", 36)
        if location_id != self._evses.location_id:
            return CommandAnswer(
                OcpiStatus.UNKNOWN_LOCATION,
                command_response(CommandResponseType.REJECTED, "unknown location"),
            )
        evse_uid = body.get("evse_uid")
        if isinstance(evse_uid, str) and self._evses.charger_of(evse_uid) is None:
            return CommandAnswer(
                OcpiStatus.SUCCESS,
                command_response(CommandResponseType.REJECTED, f"unknown EVSE {evse_uid}"),
            )
        return None

    def _run(
        self,
        kind: CommandType,
        execute: Callable[[], Awaitable[dict[str, Any]]],
        response_url: str,
        send_result: ResultSender,
    ) -> None:
        async def carry_out() -> None:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    result = await execute()
            except TimeoutError:
                result = command_result(CommandResultType.TIMEOUT)
            except Exception:
                logger.exception("command failed", extra={"command": kind.value})
                result = command_result(CommandResultType.FAILED)
            logger.info("command %s: %s", kind.value, result["result"])
            send_result(response_url, result)

        task = asyncio.create_task(carry_out(), name=f"ocpi-command-{kind.value}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _required_string(body: Mapping[str, Any], name: str, max_length: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise invalid(f"{name}: required, a string of 1-{max_length} characters")
    return value


def _optional_string(body: Mapping[str, Any], name: str, max_length: int) -> str | None:
    if body.get(name) is None:
        return None
    return _required_string(body, name, max_length)


# --- HTTP module (Receiver) ----------------------------------------------------------------

COMMAND_RESPONSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["result", "timeout"],
    "properties": {
        "result": {"enum": [r.value for r in CommandResponseType]},
        "timeout": {"type": "integer"},
        "message": {"type": "array"},
    },
}
COMMAND_BODY_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["response_url"],
    "properties": {
        "response_url": {"type": "string", "maxLength": 255},
        "token": {"type": "object"},
        "location_id": {"type": "string", "maxLength": 36},
        "evse_uid": {"type": "string", "maxLength": 36},
        "connector_id": {"type": "string", "maxLength": 36},
        "session_id": {"type": "string", "maxLength": 36},
        "reservation_id": {"type": "string", "maxLength": 36},
        "expiry_date": {"type": "string"},
        "authorization_reference": {"type": "string", "maxLength": 36},
    },
}


def commands_module(context: OcpiContext) -> Module:
    """The Commands receiver: POST `/{command}`."""
    from gateway.ocpi.partners import InterfaceRole
    from gateway.ocpi.roaming import EMSP_SIDE, owners_of, roaming
    from gateway.ocpi.server import Module, OcpiResponse, Route

    shared = roaming(context)

    async def post_command(request: OcpiRequest) -> OcpiResponse:
        owners = owners_of(
            request.partner, (request.routing.from_country_code, request.routing.from_party_id)
        )
        answer = await shared.commands.handle(
            request.match["command"], request.body, owners, shared.send_to(request.partner)
        )
        return OcpiResponse(data=answer.response, status_code=answer.status_code)

    return Module(
        identifier="commands",
        roles=(InterfaceRole.RECEIVER,),
        partner_roles=EMSP_SIDE,
        routes=(
            Route(
                "POST",
                "/{command}",
                post_command,
                summary="A command; its CommandResult follows at response_url",
                path_params={"command": {"enum": [c.value for c in CommandType]}},
                request_schema=COMMAND_BODY_SCHEMA,
                response_schema=COMMAND_RESPONSE_SCHEMA,
            ),
        ),
    )
