"""OCPI 2.2.1 Tokens, receiver side, and the authorization of drivers' RFID swipes with them.

Partners (eMSPs) push their drivers' tokens: PUT and PATCH on
`{tokens}/{country_code}/{party_id}/{uid}[?type=]`, GET for one (mod_tokens §12.2.1). There is
no DELETE: a token is invalidated with `valid=false`. Tokens are kept in SQLite
(`ocpi_tokens`), per partner, keyed by (country_code, party_id, uid, type).

**How OCPI tokens and OCPP's central system combine** (`TokenAuthorization`, the site's
`PreAuthorizer`): an identifier presented at a charger is first looked up among the RFID
tokens the roaming partners pushed (uid compared case-insensitively: readers differ in how
they print hex). A token found there is decided by OCPI alone, per its `whitelist`
(mod_tokens §12.4.5 WhitelistType):

- `valid=false` → refused, without asking anyone;
- ALWAYS → accepted from the pushed list (real-time authorization is not allowed);
- ALLOWED → accepted from the pushed list (real-time is allowed, not required: we spare the
  driver the round trip);
- ALLOWED_OFFLINE → real-time authorization at the owning eMSP (POST
  `{tokens}/{uid}/authorize?type=RFID` with LocationReferences); only when the eMSP cannot be
  reached is the pushed token's validity used;
- NEVER → real-time only; unreachable eMSP → refused;
- but never real-time within 15 minutes of a START_SESSION or RESERVE_NOW that carried the
  RFID token (mod_commands §13.3.4): the eMSP authorized it then; accepted, auth COMMAND.

Real-time answers: ALLOWED accepts; BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED and an unknown
token (404 / 2004) refuse. An identifier no partner pushed goes on to the charger's own
`Authorizer`: the OCPP station (Authorize.req, its local list and cache). The central system is
not asked about roaming tokens (it does not know them), but the session they start is an OCPP
transaction upstream like any other (same core session). The decision reaches the charger
through the site (`Connector.authorization_decided`), and an accepted roaming token is
remembered (`on_granted`) so the session it starts is owned by that partner in OCPI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.ocpi.partners import InterfaceRole
from gateway.ocpi.transport import format_datetime, invalid, parse_datetime
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest

logger = logging.getLogger(__name__)

COMMANDED_QUIET_S: Final = 15 * 60.0
"""mod_commands §13.3.4: no real-time authorization of an RFID token within 15 minutes of
the ReserveNow (or StartSession) that carried it."""

OCPP_ID_TAG_MAX: Final = 20
"""OCPP 1.6 idTag is CiString20: the longest identifier a core session can carry upstream."""


class TokenType(StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class AllowedType(StrEnum):
    """AuthorizationInfo.allowed."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class AuthMethod(StrEnum):
    """Session/CDR auth_method."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


PROFILE_TYPES: Final = ("CHEAP", "FAST", "GREEN", "REGULAR")


@dataclass(frozen=True, slots=True)
class TokenKey:
    """A token's identity at the CPO: its eMSP (country_code, party_id), uid and type."""

    country_code: str
    party_id: str
    uid: str
    type: str = TokenType.RFID.value


# --- validation ----------------------------------------------------------------------------

_STRING_FIELDS: Final[dict[str, tuple[int, bool]]] = {
    # name: (max length, required in a full object)
    "country_code": (2, True),
    "party_id": (3, True),
    "uid": (36, True),
    "contract_id": (36, True),
    "visual_number": (64, False),
    "issuer": (64, True),
    "group_id": (36, False),
    "language": (2, False),
}


def validate_token(body: object, *, partial: bool) -> dict[str, Any]:
    """A Token object (or, with `partial`, the fields of a PATCH, which must carry
    `last_updated`) checked against mod_tokens §12.3.2; unknown fields are kept (2.2.1
    receivers tolerate them). Raises `OcpiError` 2001 naming the field."""
    if not isinstance(body, dict):
        raise invalid("Token: must be a JSON object")
    for name, (max_length, required) in _STRING_FIELDS.items():
        if name not in body or body[name] is None:
            if required and not partial:
                raise invalid(f"Token.{name}: required")
            continue
        value = body[name]
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise invalid(f"Token.{name}: must be a string of 1-{max_length} characters")
        if not value.isascii() or not value.isprintable():
            raise invalid(f"Token.{name}: must be printable ASCII")
    _check_enum(body, "type", TokenType, required=not partial)
    _check_enum(body, "whitelist", WhitelistType, required=not partial)
    if ("valid" in body or not partial) and not isinstance(body.get("valid"), bool):
        raise invalid("Token.valid: must be true or false")
    profile = body.get("default_profile_type")
    if profile is not None and profile not in PROFILE_TYPES:
        raise invalid(f"Token.default_profile_type: must be one of {', '.join(PROFILE_TYPES)}")
    contract = body.get("energy_contract")
    if contract is not None:
        if not isinstance(contract, dict):
            raise invalid("Token.energy_contract: must be an object")
        supplier = contract.get("supplier_name")
        if not isinstance(supplier, str) or not supplier or len(supplier) > 64:
            raise invalid("Token.energy_contract.supplier_name: must be a string of 1-64")
        energy_id = contract.get("contract_id")
        if energy_id is not None and (not isinstance(energy_id, str) or len(energy_id) > 64):
            raise invalid("Token.energy_contract.contract_id: must be a string of at most 64")
    updated = body.get("last_updated")
    if not isinstance(updated, str):
        raise invalid("Token.last_updated: required DateTime")
    try:
        parse_datetime(updated)
    except ValueError:
        raise invalid(f"Token.last_updated: not an RFC 3339 DateTime: {updated!r}") from None
    return dict(body)


def _check_enum(body: Mapping[str, Any], name: str, kind: type[StrEnum], *, required: bool) -> None:
    if name not in body:
        if required:
            raise invalid(f"Token.{name}: required")
        return
    allowed = [member.value for member in kind]
    if body[name] not in allowed:
        raise invalid(f"Token.{name}: must be one of {', '.join(allowed)}")


def parse_token_type(text: str | None) -> str:
    """The `type` URL parameter: RFID when omitted (mod_tokens §12.2.1). Raises 2001."""
    if text is None or text == "":
        return TokenType.RFID.value
    if text not in TokenType.__members__:
        raise invalid(f"type: must be one of {', '.join(TokenType)}")
    return text


def id_tag_for(token: Mapping[str, Any]) -> str:
    """The identifier a core session started for this token carries (and OCPP sends
    upstream): the uid when it fits OCPP's 20 characters (an RFID uid always does), else a
    stable 20-character digest of (type, uid) (APP_USER uids are often UUIDs)."""
    uid = str(token["uid"])
    if len(uid) <= OCPP_ID_TAG_MAX:
        return uid
    digest = hashlib.sha256(f"{token.get('type')}:{uid}".encode()).hexdigest()
    return "OCPI" + digest[: OCPP_ID_TAG_MAX - 4].upper()


def cdr_token(token: Mapping[str, Any]) -> dict[str, Any]:
    """The CdrToken of a token (Session.cdr_token, CDR.cdr_token)."""
    return {
        "country_code": token["country_code"],
        "party_id": token["party_id"],
        "uid": token["uid"],
        "type": token["type"],
        "contract_id": token["contract_id"],
    }


# --- storage -------------------------------------------------------------------------------


class TokenRegistry:
    """The tokens partners pushed, in the store's `ocpi_tokens` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(self, key: TokenKey, token: dict[str, Any]) -> bool:
        """Store a whole (validated) Token; True when it was new. The URL's ids win: the
        caller has checked they match the body's."""
        body = json.dumps(token, separators=(",", ":"))
        updated = _stored_time(token["last_updated"])

        def write(db: sqlite3.Connection) -> bool:
            existed = db.execute(
                "SELECT 1 FROM ocpi_tokens WHERE country_code = ? AND party_id = ? AND uid = ?"
                " AND type = ?",
                (key.country_code, key.party_id, key.uid, key.type),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO ocpi_tokens (country_code, party_id, uid, type, uid_key,"
                " body, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.country_code, key.party_id, key.uid, key.type, key.uid.upper(), body, updated),
            )
            return existed is None

        return await self._store.write(write)

    async def patch(self, key: TokenKey, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge a (validated) PATCH into the stored Token; None when there is none. The ids
        cannot change."""

        def write(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT body FROM ocpi_tokens WHERE country_code = ? AND party_id = ? AND uid = ?"
                " AND type = ?",
                (key.country_code, key.party_id, key.uid, key.type),
            ).fetchone()
            if row is None:
                return None
            token: dict[str, Any] = json.loads(row["body"])
            token.update(changes)
            token.update(
                country_code=key.country_code, party_id=key.party_id, uid=key.uid, type=key.type
            )
            db.execute(
                "UPDATE ocpi_tokens SET body = ?, last_updated = ? WHERE country_code = ?"
                " AND party_id = ? AND uid = ? AND type = ?",
                (
                    json.dumps(token, separators=(",", ":")),
                    _stored_time(token["last_updated"]),
                    key.country_code,
                    key.party_id,
                    key.uid,
                    key.type,
                ),
            )
            return token

        return await self._store.write(write)

    async def get(self, key: TokenKey) -> dict[str, Any] | None:
        def read(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT body FROM ocpi_tokens WHERE country_code = ? AND party_id = ? AND uid = ?"
                " AND type = ?",
                (key.country_code, key.party_id, key.uid, key.type),
            ).fetchone()
            return None if row is None else dict(json.loads(row["body"]))

        return await self._store.read(read)

    async def find(self, uid: str, token_type: str = TokenType.RFID.value) -> dict[str, Any] | None:
        """The token a reader's uid belongs to, of any partner (case-insensitive); when two
        partners pushed the same uid, the most recently updated valid one."""

        def read(db: sqlite3.Connection) -> dict[str, Any] | None:
            rows = db.execute(
                "SELECT body FROM ocpi_tokens WHERE uid_key = ? AND type = ?"
                " ORDER BY last_updated DESC",
                (uid.upper(), token_type),
            ).fetchall()
            tokens = [dict(json.loads(row["body"])) for row in rows]
            valid = [token for token in tokens if token.get("valid") is True]
            ranked = valid or tokens
            return ranked[0] if ranked else None

        return await self._store.read(read)

    async def count(self) -> int:
        return await self._store.read(
            lambda db: int(db.execute("SELECT COUNT(*) FROM ocpi_tokens").fetchone()[0])
        )


def _stored_time(text: str) -> str:
    return format_datetime(parse_datetime(text))


# --- authorization -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RealTimeAnswer:
    """What the eMSP said to a real-time authorization: `reachable` False when it could not
    be asked (network, timeout, 5xx, no endpoint); `info` the AuthorizationInfo, None for an
    unknown token (404 / 2004)."""

    reachable: bool
    info: dict[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        return self.info is not None and self.info.get("allowed") == AllowedType.ALLOWED


class RealTimeAuthorizer(Protocol):
    """Asks a token's eMSP (POST `{tokens}/{uid}/authorize?type=`); never raises."""

    async def authorize_token(
        self, token: Mapping[str, Any], location: Mapping[str, Any] | None
    ) -> RealTimeAnswer: ...


class EvsePlaces(Protocol):
    """Where a charger is in OCPI: the Location and the EVSE that stand for it."""

    @property
    def location_id(self) -> str: ...

    def evse_uid(self, charger_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """An accepted OCPI token: the session it starts belongs to the token's eMSP."""

    token: dict[str, Any]
    auth_method: AuthMethod
    authorization_reference: str | None = None


def needs_real_time(whitelist: str) -> bool:
    return whitelist in (WhitelistType.ALLOWED_OFFLINE, WhitelistType.NEVER)


def decide(token: Mapping[str, Any], answer: RealTimeAnswer | None) -> bool:
    """The whitelist rule (module docstring): `answer` is the real-time authorization's
    outcome, None when it was not asked."""
    if token.get("valid") is not True:
        return False
    whitelist = token.get("whitelist")
    if whitelist in (WhitelistType.ALWAYS, WhitelistType.ALLOWED):
        return True
    if answer is None:
        # Real-time needed but not possible (no partner endpoint): as unreachable.
        answer = RealTimeAnswer(reachable=False)
    if answer.reachable:
        return answer.allowed
    return whitelist == WhitelistType.ALLOWED_OFFLINE


class TokenAuthorization:
    """The site's `PreAuthorizer` for OCPI tokens; see the module docstring."""

    def __init__(
        self,
        registry: TokenRegistry,
        places: EvsePlaces,
        real_time: RealTimeAuthorizer | None,
        on_granted: Callable[[str, str, Grant], None],
    ) -> None:
        self._registry = registry
        self._places = places
        self._real_time = real_time
        self._on_granted = on_granted
        self._groups: dict[str, str] = {}
        self._commanded: dict[str, float] = {}
        """uid (upper-cased) → when a START_SESSION or RESERVE_NOW carried that RFID token."""

    def commanded(self, token: Mapping[str, Any]) -> None:
        """A command carried `token`: no real-time authorization of that RFID token for
        `COMMANDED_QUIET_S` (mod_commands §13.3.4: the eMSP authorized it already)."""
        if token.get("type") == TokenType.RFID:
            now = time.monotonic()
            self._commanded = {
                uid: at for uid, at in self._commanded.items() if now - at < COMMANDED_QUIET_S
            }
            self._commanded[str(token["uid"]).upper()] = now

    def _recently_commanded(self, uid: str) -> bool:
        at = self._commanded.get(uid.upper())
        return at is not None and time.monotonic() - at < COMMANDED_QUIET_S

    def parent_id_tag(self, id_tag: str) -> str | None:
        """The group (OCPP parentIdTag, ≤ 20 characters) of a token decided here: the site
        lets it use a reservation made for another token of its group (`ParentIdSource`)."""
        return self._groups.get(id_tag.upper())

    async def pre_authorize(self, charger_id: str, id_tag: str) -> bool | None:
        try:
            token = await self._registry.find(id_tag, TokenType.RFID.value)
        except Exception:
            logger.exception("token lookup failed", extra={"charger_id": charger_id})
            return None
        if token is None:
            return None
        group = token.get("group_id")
        if isinstance(group, str) and group:
            self._groups[id_tag.upper()] = group[:OCPP_ID_TAG_MAX]
        else:
            self._groups.pop(id_tag.upper(), None)
        whitelist = str(token.get("whitelist"))
        answer: RealTimeAnswer | None = None
        method = AuthMethod.WHITELIST
        if token.get("valid") is True and self._recently_commanded(id_tag):
            # The eMSP vouched for this token in a command minutes ago: no second ask.
            accepted = True
            method = AuthMethod.COMMAND
        else:
            if token.get("valid") is True and needs_real_time(whitelist):
                answer = await self._ask(token, charger_id)
            accepted = decide(token, answer)
        reference = None
        if answer is not None and answer.reachable:
            method = AuthMethod.AUTH_REQUEST
            if answer.info is not None:
                reference = answer.info.get("authorization_reference")
        logger.info(
            "OCPI token %s",
            "accepted" if accepted else "refused",
            extra={
                "charger_id": charger_id,
                "emsp": f"{token.get('country_code')}*{token.get('party_id')}",
                "whitelist": whitelist,
                "auth_method": method.value,
                "real_time": None if answer is None else answer.reachable,
            },
        )
        if accepted:
            self._on_granted(
                charger_id,
                id_tag,
                Grant(token, method, str(reference) if reference is not None else None),
            )
        return accepted

    async def _ask(self, token: Mapping[str, Any], charger_id: str) -> RealTimeAnswer:
        if self._real_time is None:
            return RealTimeAnswer(reachable=False)
        location = {
            "location_id": self._places.location_id,
            "evse_uids": [self._places.evse_uid(charger_id)],
        }
        try:
            return await self._real_time.authorize_token(token, location)
        except Exception:
            logger.exception("real-time authorization failed", extra={"charger_id": charger_id})
            return RealTimeAnswer(reachable=False)


def token_last_updated(token: Mapping[str, Any]) -> datetime:
    return parse_datetime(str(token["last_updated"]))


# --- HTTP module (Receiver) ----------------------------------------------------------------

TOKEN_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "country_code",
        "party_id",
        "uid",
        "type",
        "contract_id",
        "issuer",
        "valid",
        "whitelist",
        "last_updated",
    ],
    "properties": {
        "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
        "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
        "uid": {"type": "string", "minLength": 1, "maxLength": 36},
        "type": {"enum": [t.value for t in TokenType]},
        "contract_id": {"type": "string", "minLength": 1, "maxLength": 36},
        "visual_number": {"type": "string", "maxLength": 64},
        "issuer": {"type": "string", "minLength": 1, "maxLength": 64},
        "group_id": {"type": "string", "maxLength": 36},
        "valid": {"type": "boolean"},
        "whitelist": {"enum": [w.value for w in WhitelistType]},
        "language": {"type": "string", "maxLength": 2},
        "default_profile_type": {"enum": list(PROFILE_TYPES)},
        "energy_contract": {"type": "object"},
        "last_updated": {"type": "string", "format": "date-time"},
    },
}
TOKEN_PATCH_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["last_updated"],
    "properties": TOKEN_SCHEMA["properties"],
}
_TOKEN_PATH: Final = "/{country_code}/{party_id}/{token_uid}"
_TOKEN_PATH_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
    "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
    "token_uid": {"type": "string", "minLength": 1, "maxLength": 36},
}
_TYPE_QUERY: Final[dict[str, dict[str, Any]]] = {"type": {"enum": [t.value for t in TokenType]}}


def tokens_module(context: OcpiContext) -> Module:
    """The Tokens receiver: GET, PUT and PATCH of one token of the caller's parties."""
    from gateway.ocpi.roaming import EMSP_SIDE, owners_of, roaming
    from gateway.ocpi.server import Module, OcpiResponse, Route
    from gateway.ocpi.transport import OcpiStatus, not_found

    registry = roaming(context).tokens

    def key_of(request: OcpiRequest) -> TokenKey:
        country_code = request.match["country_code"]
        party_id = request.match["party_id"]
        owners = owners_of(
            request.partner, (request.routing.from_country_code, request.routing.from_party_id)
        )
        if (country_code, party_id) not in owners:
            raise not_found(f"tokens of {country_code}/{party_id}: not one of your parties")
        return TokenKey(
            country_code,
            party_id,
            request.match["token_uid"],
            parse_token_type(request.query.get("type")),
        )

    async def get_token(request: OcpiRequest) -> Any:
        key = key_of(request)
        token = await registry.get(key)
        if token is None:
            raise not_found(f"unknown token {key.uid} ({key.type})", OcpiStatus.UNKNOWN_TOKEN)
        return token

    async def put_token(request: OcpiRequest) -> OcpiResponse:
        key = key_of(request)
        token = validate_token(request.body, partial=False)
        given = (token["country_code"], token["party_id"], token["uid"], token["type"])
        if given != (key.country_code, key.party_id, key.uid, key.type):
            raise invalid("Token: country_code, party_id, uid and type must match the URL")
        created = await registry.put(key, token)
        return OcpiResponse(http_status=201 if created else 200)

    async def patch_token(request: OcpiRequest) -> OcpiResponse:
        key = key_of(request)
        changes = validate_token(request.body, partial=True)
        for name, value in (
            ("country_code", key.country_code),
            ("party_id", key.party_id),
            ("uid", key.uid),
            ("type", key.type),
        ):
            if name in changes and changes[name] != value:
                raise invalid(f"Token.{name}: cannot change (must match the URL)")
        if await registry.patch(key, changes) is None:
            raise not_found(f"unknown token {key.uid} ({key.type})", OcpiStatus.UNKNOWN_TOKEN)
        return OcpiResponse()

    return Module(
        identifier="tokens",
        roles=(InterfaceRole.RECEIVER,),
        partner_roles=EMSP_SIDE,
        routes=(
            Route(
                "GET",
                _TOKEN_PATH,
                get_token,
                summary="One token as stored here",
                path_params=_TOKEN_PATH_PARAMS,
                query_params=_TYPE_QUERY,
                response_schema=TOKEN_SCHEMA,
            ),
            Route(
                "PUT",
                _TOKEN_PATH,
                put_token,
                summary="Push a new or updated token",
                path_params=_TOKEN_PATH_PARAMS,
                query_params=_TYPE_QUERY,
                request_schema=TOKEN_SCHEMA,
            ),
            Route(
                "PATCH",
                _TOKEN_PATH,
                patch_token,
                summary="Update some fields of a token (last_updated required)",
                path_params=_TOKEN_PATH_PARAMS,
                query_params=_TYPE_QUERY,
                request_schema=TOKEN_PATCH_SCHEMA,
            ),
        ),
    )
