"""OCPI Tariffs (we are Sender; mod_tariffs): the tariffs of the tariff engine
(`gateway.tariffs`, configured as `[[tariffs]]`), served paginated on last_updated. At start,
a tariff that is new or changed since the last start is PUT, and one that is gone is DELETEd,
to every partner with a tariffs RECEIVER endpoint (the tariffs only change with the
configuration); partners can always pull.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, Final

from gateway.ocpi import transport
from gateway.ocpi.partners import InterfaceRole
from gateway.ocpi.server import Module, OcpiContext, OcpiRequest, Route
from gateway.ocpi.transport import Page, not_found
from gateway.tariffs.model import Tariff

logger = logging.getLogger("gateway.ocpi.tariffs")

_PRICE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["excl_vat"],
    "properties": {"excl_vat": {"type": "number"}, "incl_vat": {"type": "number"}},
}
TARIFF_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["country_code", "party_id", "id", "currency", "elements", "last_updated"],
    "properties": {
        "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
        "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
        "id": {"type": "string", "maxLength": 36},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "type": {
            "enum": [
                "AD_HOC_PAYMENT",
                "PROFILE_CHEAP",
                "PROFILE_FAST",
                "PROFILE_GREEN",
                "REGULAR",
            ]
        },
        "min_price": _PRICE,
        "max_price": _PRICE,
        "elements": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["price_components"],
                "properties": {
                    "price_components": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "price", "step_size"],
                            "properties": {
                                "type": {"enum": ["ENERGY", "FLAT", "PARKING_TIME", "TIME"]},
                                "price": {"type": "number"},
                                "vat": {"type": "number"},
                                "step_size": {"type": "integer"},
                            },
                        },
                    },
                    "restrictions": {"type": "object"},
                },
            },
        },
        "last_updated": {"type": "string", "format": "date-time"},
    },
}


def configured_tariffs(context: OcpiContext) -> list[Tariff]:
    """The tariffs of the configuration (`[[tariffs]]`), in their order."""
    return list(context.config.tariffs)


async def publish_changes(context: OcpiContext, tariffs: list[Tariff]) -> tuple[int, int]:
    """PUT the tariffs that are new or changed since the last start, DELETE the ones that are
    gone (ocpi.md §4: tariffs are pushed with PUT and DELETE), and remember what was pushed.
    Returns (put, deleted)."""
    published = await context.store.read(
        lambda db: {
            str(row["id"]): (str(row["path"]), str(row["body"]))
            for row in db.execute("SELECT * FROM ocpi_published_tariffs")
        }
    )
    rows: list[tuple[str, str, str]] = []
    put = 0
    for tariff in tariffs:
        path = f"/{tariff.country_code}/{tariff.party_id}/{tariff.id}"
        body = tariff.to_ocpi()
        text = json.dumps(body, sort_keys=True)
        if published.pop(tariff.id, None) != (path, text):
            context.pushes.push("tariffs", "PUT", path, body, key=f"tariff:{tariff.id}")
            rows.append((tariff.id, path, text))
            put += 1
    for tariff_id, (path, _) in published.items():
        context.pushes.push("tariffs", "DELETE", path, None, key=f"tariff:{tariff_id}")

    def write(db: sqlite3.Connection) -> None:
        db.executemany(
            "INSERT INTO ocpi_published_tariffs (id, path, body) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET path = excluded.path, body = excluded.body",
            rows,
        )
        db.executemany("DELETE FROM ocpi_published_tariffs WHERE id = ?", [(i,) for i in published])

    if rows or published:
        await context.store.write(write)
    return put, len(published)


def tariffs_module(context: OcpiContext) -> Module:
    tariffs = configured_tariffs(context)

    async def list_tariffs(request: OcpiRequest) -> Page:
        assert request.page is not None
        return transport.paginate(
            tariffs, request.page, lambda t: t.last_updated, lambda t: t.to_ocpi()
        )

    async def get_tariff(request: OcpiRequest) -> dict[str, Any]:
        # Not a 2.2.1 Sender endpoint, but handy for a partner that lost one object; the
        # spec's own receivers are addressed as {country_code}/{party_id}/{tariff_id}.
        wanted = request.match["tariff_id"]
        for tariff in tariffs:
            if tariff.id == wanted:
                return tariff.to_ocpi()
        raise not_found("unknown tariff")

    async def run() -> None:
        put, deleted = await publish_changes(context, tariffs)
        if put or deleted:
            logger.info("OCPI tariffs pushed", extra={"put": put, "deleted": deleted})

    return Module(
        identifier="tariffs",
        roles=(InterfaceRole.SENDER,),
        run=run,
        routes=(
            Route(
                "GET",
                "",
                list_tariffs,
                summary="Tariffs, paginated on last_updated",
                response_schema=TARIFF_SCHEMA,
                paginated=True,
            ),
            Route(
                "GET",
                "/{tariff_id}",
                get_tariff,
                summary="One tariff",
                response_schema=TARIFF_SCHEMA,
                path_params={"tariff_id": {"type": "string", "minLength": 1, "maxLength": 36}},
            ),
        ),
    )
