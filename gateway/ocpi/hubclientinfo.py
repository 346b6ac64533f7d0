"""OCPI HubClientInfo (we are Receiver; mod_hub_client_info): a hub tells us which parties
behind it are CONNECTED, OFFLINE, PLANNED or SUSPENDED. Kept in `ocpi_client_info`, served
back on GET, and readable by other modules through `client_status()`."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from gateway.ocpi.partners import InterfaceRole, PartyRole
from gateway.ocpi.server import Module, OcpiContext, OcpiRequest, OcpiResponse, Route
from gateway.ocpi.transport import OcpiStatus, format_datetime, invalid, not_found, parse_datetime
from gateway.store import Store

CLIENT_INFO_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["party_id", "country_code", "role", "status", "last_updated"],
    "properties": {
        "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
        "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
        "role": {"enum": ["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]},
        "status": {"enum": ["CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED"]},
        "last_updated": {"type": "string", "format": "date-time"},
    },
}
_CC: Final[dict[str, Any]] = {"type": "string", "minLength": 2, "maxLength": 2}
_PID: Final[dict[str, Any]] = {"type": "string", "minLength": 3, "maxLength": 3}


async def client_status(store: Store, country_code: str, party_id: str) -> str | None:
    """The status a hub last reported for a party, or None when none did."""

    def read(db: sqlite3.Connection) -> str | None:
        row = db.execute(
            "SELECT body FROM ocpi_client_info WHERE country_code = ? AND party_id = ?",
            (country_code, party_id),
        ).fetchone()
        return None if row is None else str(json.loads(row["body"]).get("status"))

    return await store.read(read)


def hubclientinfo_module(context: OcpiContext) -> Module:
    store = context.store

    async def get(request: OcpiRequest) -> dict[str, Any]:
        country_code, party_id = request.match["country_code"], request.match["party_id"]

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT body FROM ocpi_client_info WHERE country_code = ? AND party_id = ?",
                (country_code, party_id),
            ).fetchone()
            return None if row is None else str(row["body"])

        body = await store.read(read)
        if body is None:
            raise not_found("unknown client")
        result: dict[str, Any] = json.loads(body)
        return result

    async def put(request: OcpiRequest) -> OcpiResponse:
        body = request.body
        country_code, party_id = request.match["country_code"], request.match["party_id"]
        if body["country_code"] != country_code or body["party_id"] != party_id:
            raise invalid("country_code/party_id: the body does not match the URL")
        try:
            stamp = format_datetime(parse_datetime(body["last_updated"]))
        except ValueError:
            raise invalid("last_updated: not an RFC 3339 DateTime") from None
        hub = request.partner.id

        def write(db: sqlite3.Connection) -> bool:
            existed = db.execute(
                "SELECT 1 FROM ocpi_client_info WHERE country_code = ? AND party_id = ?",
                (country_code, party_id),
            ).fetchone()
            db.execute(
                "INSERT INTO ocpi_client_info (country_code, party_id, hub, body, last_updated)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (country_code, party_id) DO UPDATE SET"
                " hub = excluded.hub, body = excluded.body, last_updated = excluded.last_updated",
                (country_code, party_id, hub, json.dumps(body), stamp),
            )
            return existed is not None

        existed = await store.write(write)
        return OcpiResponse(status_code=OcpiStatus.SUCCESS, http_status=200 if existed else 201)

    params = {"country_code": _CC, "party_id": _PID}
    return Module(
        identifier="hubclientinfo",
        roles=(InterfaceRole.RECEIVER,),
        partner_roles=frozenset({PartyRole.HUB}),
        routes=(
            Route(
                "GET",
                "/{country_code}/{party_id}",
                get,
                summary="The ClientInfo we hold for a party",
                response_schema=CLIENT_INFO_SCHEMA,
                path_params=params,
            ),
            Route(
                "PUT",
                "/{country_code}/{party_id}",
                put,
                summary="A hub's ClientInfo for a party",
                request_schema=CLIENT_INFO_SCHEMA,
                path_params=params,
            ),
        ),
    )
