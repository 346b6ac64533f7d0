"""OCPI versions and version details (version_information_endpoint): the one version we
speak, 2.2.1, and its endpoints, listed from the registered modules. Both open to the
CREDENTIALS_TOKEN_A (a partner reads them before registering)."""

from __future__ import annotations

from typing import Any, Final

from gateway.ocpi import transport
from gateway.ocpi.server import OCPI_ROOT, Module, OcpiContext, OcpiRequest, Route

VERSIONS_PATH: Final = f"{OCPI_ROOT}/versions"

VERSION_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["version", "url"],
    "properties": {"version": {"type": "string"}, "url": {"type": "string"}},
}
DETAILS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["version", "endpoints"],
    "properties": {
        "version": {"type": "string"},
        "endpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["identifier", "role", "url"],
                "properties": {
                    "identifier": {"type": "string"},
                    "role": {"enum": ["SENDER", "RECEIVER"]},
                    "url": {"type": "string"},
                },
            },
        },
    },
}


def versions_url(public_url: str) -> str:
    """The URL we hand out in our credentials."""
    return public_url + VERSIONS_PATH


def versions_module(context: OcpiContext) -> Module:
    async def versions(request: OcpiRequest) -> list[dict[str, str]]:
        return [
            {
                "version": transport.VERSION,
                "url": f"{context.public_url}{OCPI_ROOT}/{transport.VERSION}",
            }
        ]

    async def details(request: OcpiRequest) -> dict[str, Any]:
        return {"version": transport.VERSION, "endpoints": context.server.endpoints()}

    return Module(
        identifier="versions",
        roles=(),
        path=OCPI_ROOT,
        listed=False,
        routes=(
            Route(
                "GET",
                "/versions",
                versions,
                summary="The OCPI versions we speak",
                response_schema={"type": "array", "items": VERSION_SCHEMA},
                token_a=True,
            ),
            Route(
                "GET",
                f"/{transport.VERSION}",
                details,
                summary="The 2.2.1 endpoints we serve",
                response_schema=DETAILS_SCHEMA,
                token_a=True,
            ),
        ),
    )
