"""OCPI credentials and registration, both directions (credentials.asciidoc; ocpi.md §3).

A partner registers with us (we are the receiver): it got a CREDENTIALS_TOKEN_A from us out
of band, reads our versions with it, and POSTs its credentials (its TOKEN_B and versions URL);
we read its versions and endpoints *with B*, create TOKEN_C, and answer with our credentials
carrying C. It uses C from then on; token A is spent.

We register with a partner (we are the initiator, `register_with`): with the token A it gave
us we read its versions and details, create TOKEN_B (accepted by us at once, but only on
versions and credentials, so the partner can read our versions while our POST is under way),
POST our credentials, and keep the TOKEN_C it answers with.

PUT rotates tokens (and re-reads the endpoints, even when the version did not change);
DELETE unregisters. Tokens are generated with `secrets` and never logged. A partner that
wants raw tokens instead of base64 is detected while registering (we try base64 first, then
raw, as `ocpi-tool` does) and remembered.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Final

from gateway.ocpi import transport
from gateway.ocpi.client import OcpiClientError, OcpiReply
from gateway.ocpi.partners import (
    Endpoint,
    InterfaceRole,
    Partner,
    PartnerStatus,
    new_token,
)
from gateway.ocpi.server import Module, OcpiContext, OcpiRequest, OcpiResponse, Route
from gateway.ocpi.transport import OcpiError, OcpiStatus
from gateway.ocpi.versions import versions_url

logger = logging.getLogger("gateway.ocpi.credentials")

_TOKEN: Final[dict[str, Any]] = {
    "type": "string",
    "minLength": 1,
    "maxLength": transport.MAX_TOKEN_LENGTH,
    "pattern": "^[!-~]+$",
}
BUSINESS_DETAILS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "website": {"type": "string", "maxLength": 255},
        "logo": {"type": "object"},
    },
}
CREDENTIALS_ROLE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["role", "business_details", "party_id", "country_code"],
    "properties": {
        "role": {"enum": ["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]},
        "business_details": BUSINESS_DETAILS_SCHEMA,
        "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
        "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
    },
}
CREDENTIALS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["token", "url", "roles"],
    "properties": {
        "token": _TOKEN,
        "url": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^https?://"},
        "roles": {"type": "array", "minItems": 1, "items": CREDENTIALS_ROLE_SCHEMA},
    },
}

REQUIRED_ENDPOINTS: Final = frozenset({"credentials"})
"""What a partner must offer for us to register with it (or accept its registration): the
credentials module, so each side can update and unregister. The functional modules are
optional: a hub or an NSP offers a different set than an eMSP."""


class RegistrationError(Exception):
    """Registering (or updating) with a partner failed; the message says at which step and
    never contains a token. `status_code` is the OCPI code to answer with (3001, 3002, 3003)."""

    def __init__(self, message: str, status_code: int = OcpiStatus.CLIENT_API_UNUSABLE) -> None:
        super().__init__(message)
        self.status_code = status_code


def our_credentials(context: OcpiContext, token: str) -> dict[str, Any]:
    """Our credentials object, carrying the token the partner is to use with us."""
    section = context.ocpi
    business: dict[str, Any] = {"name": section.business_name}
    if section.business_website:
        business["website"] = section.business_website
    return {
        "token": token,
        "url": versions_url(context.public_url),
        "roles": [
            {
                "role": "CPO",
                "business_details": business,
                "party_id": section.party_id,
                "country_code": section.country_code,
            }
        ],
    }


# --- talking to the partner ------------------------------------------------------------------


async def _call(
    context: OcpiContext,
    partner: Partner,
    method: str,
    url: str,
    token: str,
    *,
    body: Any = None,
    probe_raw: bool = False,
) -> tuple[OcpiReply, Partner]:
    """One call during registration, with the token base64 (or raw when the partner wants
    it); with `probe_raw`, a 401 to base64 is retried raw and the choice remembered."""
    reply = await context.client.call(method, url, token, body=body, raw_token=partner.raw_token)
    if reply.http_status == 401 and probe_raw and not partner.raw_token:
        raw_reply = await context.client.call(method, url, token, body=body, raw_token=True)
        if raw_reply.http_status != 401:
            partner = await context.partners.save(replace(partner, raw_token=True))
            logger.info("OCPI partner expects raw tokens", extra={"partner": partner.id})
            return raw_reply, partner
    return reply, partner


async def fetch_endpoints(
    context: OcpiContext, partner: Partner, url: str, token: str, *, probe_raw: bool = False
) -> tuple[str, list[Endpoint], Partner]:
    """Read a partner's versions at `url` and the details of 2.2.1. Raises
    `RegistrationError` (3001 unreachable or malformed, 3002 no 2.2.1, 3003 endpoints
    missing)."""
    try:
        reply, partner = await _call(context, partner, "GET", url, token, probe_raw=probe_raw)
    except OcpiClientError as error:
        raise RegistrationError(f"versions: {error}") from None
    if not reply.ok or not isinstance(reply.data, list):
        raise RegistrationError(
            f"versions: HTTP {reply.http_status}, OCPI {reply.status_code}, no version list"
        )
    details_url = next(
        (
            item.get("url")
            for item in reply.data
            if isinstance(item, dict) and item.get("version") == transport.VERSION
        ),
        None,
    )
    if not isinstance(details_url, str) or not details_url:
        raise RegistrationError(
            f"versions: partner does not offer {transport.VERSION}",
            OcpiStatus.UNSUPPORTED_VERSION,
        )
    try:
        reply, partner = await _call(context, partner, "GET", details_url, token)
    except OcpiClientError as error:
        raise RegistrationError(f"version details: {error}") from None
    data = reply.data
    if not reply.ok or not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        raise RegistrationError(
            f"version details: HTTP {reply.http_status}, OCPI {reply.status_code}, no endpoint list"
        )
    endpoints: list[Endpoint] = []
    for item in data["endpoints"]:
        if not isinstance(item, dict):
            continue
        identifier, role, endpoint_url = item.get("identifier"), item.get("role"), item.get("url")
        if (
            isinstance(identifier, str)
            and isinstance(role, str)
            and role in InterfaceRole.__members__
            and isinstance(endpoint_url, str)
            and endpoint_url.startswith(("http://", "https://"))
        ):
            endpoints.append(Endpoint(identifier, InterfaceRole(role), endpoint_url))
    missing = REQUIRED_ENDPOINTS - {e.identifier for e in endpoints}
    if missing:
        raise RegistrationError(
            f"version details: missing endpoints {sorted(missing)}", OcpiStatus.MISSING_ENDPOINTS
        )
    return transport.VERSION, endpoints, partner


def _credentials_url(partner: Partner) -> str:
    url = next((e.url for e in partner.endpoints if e.identifier == "credentials"), None)
    if url is None:
        raise RegistrationError("partner has no credentials endpoint", OcpiStatus.MISSING_ENDPOINTS)
    return url


def _their_credentials(reply: OcpiReply, step: str) -> dict[str, Any]:
    data = reply.data
    if (
        not reply.ok
        or not isinstance(data, dict)
        or not transport.is_valid_token(data.get("token"))
        or not isinstance(data.get("roles"), list)
    ):
        raise RegistrationError(
            f"{step}: HTTP {reply.http_status}, OCPI {reply.status_code}, no valid credentials"
        )
    return data


async def register_with(context: OcpiContext, partner: Partner) -> Partner:
    """Run the initiator side of the handshake with a partner whose versions URL and token A
    we hold (`partner.versions_url`, `partner.token_out`). Returns the registered partner;
    raises `RegistrationError`."""
    token_a = partner.token_out
    if partner.versions_url is None or token_a is None:
        raise RegistrationError("no versions URL or token A for the partner")
    version, endpoints, partner = await fetch_endpoints(
        context, partner, partner.versions_url, token_a, probe_raw=True
    )
    partner = replace(partner, endpoints=tuple(endpoints), version=version)
    token_b = new_token()
    # Accept B (on versions and credentials only) before POSTing: the partner reads our
    # versions with it while our POST is still open.
    partner = await context.partners.save(replace(partner, token_in=token_b))
    try:
        reply, partner = await _call(
            context,
            partner,
            "POST",
            _credentials_url(partner),
            token_a,
            body=our_credentials(context, token_b),
        )
        theirs = _their_credentials(reply, "credentials POST")
    except (OcpiClientError, RegistrationError) as error:
        await context.partners.save(replace(partner, token_in=None))
        raise RegistrationError(str(error)) from None
    url = theirs.get("url")
    return await context.partners.registered_with(
        partner,
        token_in=token_b,
        token_out=str(theirs["token"]),
        versions_url=url if isinstance(url, str) and url else partner.versions_url or "",
        version=version,
        endpoints=endpoints,
        roles=[role for role in theirs["roles"] if isinstance(role, dict)],
    )


async def update_with(context: OcpiContext, partner: Partner) -> Partner:
    """Rotate our tokens with a registered partner (PUT our credentials with a new TOKEN_B,
    keep the new TOKEN_C it answers with) and re-read its endpoints. Raises
    `RegistrationError`."""
    if partner.status is not PartnerStatus.REGISTERED or partner.token_out is None:
        raise RegistrationError("partner is not registered")
    token_c_old = partner.token_out
    token_b = new_token()
    url = _credentials_url(partner)
    # Both the old and the new token work until the partner confirms: it may call back with
    # B while our PUT is open.
    partner = await context.partners.save(replace(partner, token_next=token_b))
    try:
        reply, partner = await _call(
            context, partner, "PUT", url, token_c_old, body=our_credentials(context, token_b)
        )
        theirs = _their_credentials(reply, "credentials PUT")
    except (OcpiClientError, RegistrationError) as error:
        await context.partners.save(replace(partner, token_next=None))
        raise RegistrationError(f"credentials PUT: {error}") from None
    token_c = str(theirs["token"])
    their_url = theirs.get("url")
    versions = their_url if isinstance(their_url, str) and their_url else partner.versions_url
    assert versions is not None
    version, endpoints, partner = await fetch_endpoints(context, partner, versions, token_c)
    return await context.partners.registered_with(
        partner,
        token_in=token_b,
        token_out=token_c,
        versions_url=versions,
        version=version,
        endpoints=endpoints,
        roles=[role for role in theirs["roles"] if isinstance(role, dict)],
    )


async def unregister_from(context: OcpiContext, partner: Partner) -> Partner:
    """DELETE our credentials at the partner, then forget its tokens (also when the DELETE
    fails: we no longer accept its token either way)."""
    if partner.status is PartnerStatus.REGISTERED and partner.token_out is not None:
        try:
            url = _credentials_url(partner)
            reply, partner = await _call(context, partner, "DELETE", url, partner.token_out)
            if not reply.ok:
                logger.warning(
                    "OCPI partner refused our unregistration",
                    extra={"partner": partner.id, "http_status": reply.http_status},
                )
        except (OcpiClientError, RegistrationError) as error:
            logger.warning(
                "OCPI unregistration not delivered: %s", error, extra={"partner": partner.id}
            )
    return await context.partners.unregister(partner)


# --- the module (we are receiver of registrations) ---------------------------------------------


def credentials_module(context: OcpiContext) -> Module:
    async def get(request: OcpiRequest) -> dict[str, Any]:
        partner = request.partner
        token = partner.token_in if not request.token_a else partner.token_a
        return our_credentials(context, token or partner.token_in or "")

    async def register(request: OcpiRequest, *, update: bool) -> OcpiResponse:
        partner = request.partner
        registered = partner.status is PartnerStatus.REGISTERED and not request.token_a
        if update and not registered:
            raise OcpiError(
                OcpiStatus.CLIENT_ERROR, "not registered: POST to register", http_status=405
            )
        if not update and registered:
            raise OcpiError(
                OcpiStatus.CLIENT_ERROR,
                "already registered: PUT to update, DELETE to unregister",
                http_status=405,
            )
        body = request.body
        token_b = str(body["token"])
        try:
            version, endpoints, partner = await fetch_endpoints(
                context, partner, str(body["url"]), token_b, probe_raw=True
            )
        except RegistrationError as error:
            logger.warning(
                "OCPI registration by partner failed: %s",
                error,
                extra={"partner": partner.id, "update": update},
            )
            raise OcpiError(error.status_code, str(error)) from None
        token_c = new_token()
        await context.partners.registered_with(
            partner,
            token_in=token_c,
            token_out=token_b,
            versions_url=str(body["url"]),
            version=version,
            endpoints=endpoints,
            roles=list(body["roles"]),
        )
        return OcpiResponse(data=our_credentials(context, token_c))

    async def post(request: OcpiRequest) -> OcpiResponse:
        return await register(request, update=False)

    async def put(request: OcpiRequest) -> OcpiResponse:
        return await register(request, update=True)

    async def delete(request: OcpiRequest) -> OcpiResponse:
        partner = request.partner
        if request.token_a or partner.status is not PartnerStatus.REGISTERED:
            raise OcpiError(OcpiStatus.CLIENT_ERROR, "not registered", http_status=405)
        await context.partners.unregister(partner)
        return OcpiResponse()

    return Module(
        identifier="credentials",
        roles=(InterfaceRole.SENDER, InterfaceRole.RECEIVER),
        routes=(
            Route(
                "GET",
                "",
                get,
                summary="Our credentials (with the token you use)",
                response_schema=CREDENTIALS_SCHEMA,
                token_a=True,
            ),
            Route(
                "POST",
                "",
                post,
                summary="Register: your credentials with TOKEN_B; answered with TOKEN_C",
                request_schema=CREDENTIALS_SCHEMA,
                response_schema=CREDENTIALS_SCHEMA,
                token_a=True,
            ),
            Route(
                "PUT",
                "",
                put,
                summary="Update your credentials (new token, re-read endpoints)",
                request_schema=CREDENTIALS_SCHEMA,
                response_schema=CREDENTIALS_SCHEMA,
                token_a=True,
            ),
            Route("DELETE", "", delete, summary="Unregister", token_a=True),
        ),
    )
