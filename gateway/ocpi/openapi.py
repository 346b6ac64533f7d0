"""The OpenAPI 3.1 description of the OCPI endpoints, generated from the registered modules'
routes (their paths, parameters and JSON schemas), so it cannot drift from what is served."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from gateway import __version__
from gateway.ocpi import transport

_PATH_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DATETIME_SCHEMA: Final[dict[str, Any]] = {"type": "string", "format": "date-time"}

_ENVELOPE_ERROR: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["status_code", "timestamp"],
    "properties": {
        "data": {},
        "status_code": {"type": "integer"},
        "status_message": {"type": "string"},
        "timestamp": DATETIME_SCHEMA,
    },
}


def _envelope(data: dict[str, Any] | None, *, many: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["status_code", "timestamp"],
        "properties": {
            "status_code": {"type": "integer"},
            "status_message": {"type": "string"},
            "timestamp": DATETIME_SCHEMA,
        },
    }
    if data is not None:
        schema["properties"]["data"] = {"type": "array", "items": data} if many else data
    else:
        schema["properties"]["data"] = {}
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page_parameters(require_date_from: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": "date_from",
            "in": "query",
            "required": require_date_from,
            "schema": DATETIME_SCHEMA,
            "description": "Only objects with last_updated at or after this time",
        },
        {
            "name": "date_to",
            "in": "query",
            "required": False,
            "schema": DATETIME_SCHEMA,
            "description": "Only objects with last_updated before this time",
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ]


def describe(public_url: str, modules: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI document for `modules` (`gateway.ocpi.server.Module` values)."""
    paths: dict[str, dict[str, Any]] = {}
    for module in modules:
        for route in module.routes:
            path = module.base_path + route.path
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "path", "required": True, "schema": route.path_params[name]}
                for name in _PATH_PARAM.findall(route.path)
            ]
            if route.paginated:
                parameters.extend(_page_parameters(route.require_date_from))
            for name, schema in route.query_params.items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in route.required_query,
                        "schema": schema,
                    }
                )
            responses: dict[str, Any] = {
                str(route.success_status): _json(
                    _envelope(route.response_schema, many=route.paginated), "OCPI response"
                ),
                "401": _json(_ENVELOPE_ERROR, "Missing or unknown token"),
                "403": _json(_ENVELOPE_ERROR, "Module not open to the caller's role"),
                "404": _json(_ENVELOPE_ERROR, "Unknown object"),
                "405": _json(_ENVELOPE_ERROR, "Method not allowed in this state"),
            }
            if route.success_status != 200:
                # Errors inside the OCPI layer are HTTP 200 with a 2xxx/3xxx code.
                responses["200"] = _json(_ENVELOPE_ERROR, "OCPI error")
            if route.success_status != 201:
                responses["201"] = _json(
                    _envelope(route.response_schema, many=route.paginated), "Created"
                )
            operation: dict[str, Any] = {
                "operationId": f"{module.identifier}_{route.method.lower()}_{_slug(route.path)}",
                "summary": route.summary or f"{module.identifier} {route.method}",
                "tags": [module.identifier],
                "parameters": parameters,
                "responses": responses,
                "security": [{"token": []}],
            }
            if route.paginated:
                operation["responses"]["200"]["headers"] = {
                    transport.HEADER_TOTAL_COUNT: {"schema": {"type": "integer"}},
                    transport.HEADER_LIMIT: {"schema": {"type": "integer"}},
                    "Link": {"schema": {"type": "string"}},
                }
            if route.request_schema is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": route.request_schema}},
                }
                responses["400"] = _json(_ENVELOPE_ERROR, "Body is not valid JSON")
            paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "evgw OCPI 2.2.1 CPO interface",
            "version": __version__,
            "description": "Generated from the modules the gateway serves.",
        },
        "servers": [{"url": public_url}],
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Token <base64 of the credentials token>` (raw tolerated)",
                }
            }
        },
        "paths": paths,
    }


def _slug(path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return slug or "root"
