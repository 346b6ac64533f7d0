"""The OpenAPI 3.1 description of the local API, as data (served at `/api/v1/openapi.json`).

`tests/api/test_openapi.py` checks that every route the server has is described here and
every path described here is routed, and runs schemathesis against a running gateway with
this document, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from gateway import __version__

API_PREFIX: Final = "/api/v1"

Schema = dict[str, Any]


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_NUMBER: Final[Schema] = {"type": "number"}
_PER_PHASE: Final[Schema] = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 3,
    "maxItems": 3,
    "description": "Amperes per phase [L1, L2, L3].",
}
_TIME: Final[Schema] = {"type": "string", "format": "date-time"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], description: str = "") -> Schema:
    schema: Schema = {
        "type": "object",
        "required": list(properties),
        "properties": properties,
    }
    if description:
        schema["description"] = description
    return schema


SCHEMAS: Final[dict[str, Schema]] = {
    "Error": _object({"error": {"type": "string"}}, "Why the request was not served."),
    "Me": _object(
        {"name": {"type": "string"}, "role": {"type": "string", "enum": ["read", "admin"]}}
    ),
    "Site": _object(
        {
            "version": {"type": "string"},
            "time": _TIME,
            "chargers": {"type": "integer"},
            "statuses": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "How many connectors show each status.",
            },
            "balanced": {"type": "boolean"},
            "root_circuit": _nullable({"type": "string"}),
            "current_a": _PER_PHASE,
            "limit_a": _nullable(_PER_PHASE),
            "power_w": _NUMBER,
        }
    ),
    "Circuit": _object(
        {
            "id": {"type": "string"},
            "parent": _nullable({"type": "string"}),
            "fuse_a": _PER_PHASE,
            "max_power_w": _nullable(_NUMBER),
            "limits_a": {
                "type": "object",
                "additionalProperties": _PER_PHASE,
                "description": "Further limits by source (api, ocpp, a tariff, ...).",
            },
            "limit_a": {**_PER_PHASE, "description": "The tightest of the fuse and the limits."},
            "measured_a": _nullable(_PER_PHASE),
            "measured_source": {"type": "string", "enum": ["meter", "meter-stale", "chargers"]},
            "allocated_a": {
                **_PER_PHASE,
                "description": "What the balancing grants the chargers below, per grid phase.",
            },
            "chargers": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Balancing": _object(
        {
            "setpoint_a": _nullable(_NUMBER),
            "target_a": _NUMBER,
            "reason": {"type": "string"},
        },
        "The balancing's last decision: confirmed setpoint, target, and why.",
    ),
    "Charger": _object(
        {
            "id": {"type": "string"},
            "status": _nullable({"type": "string"}),
            "online": {"type": "boolean"},
            "operative": {"type": "boolean"},
            "phases": {"type": "integer"},
            "max_current_a": _NUMBER,
            "circuit": _nullable({"type": "string"}),
            "current_a": _nullable(_PER_PHASE),
            "power_w": _nullable(_NUMBER),
            "energy_wh": _nullable(_NUMBER),
            "setpoint_a": _nullable(_NUMBER),
            "enabled": _nullable({"type": "boolean"}),
            "cp_state": _nullable({"type": "string"}),
            "allocated_a": _nullable(_NUMBER),
            "balancing": _nullable(_ref("Balancing")),
            "caps_a": {"type": "object", "additionalProperties": _NUMBER},
            "error_code": {"type": "integer"},
            "ocpp_error_code": _nullable({"type": "string"}),
            "session_id": _nullable({"type": "string"}),
        }
    ),
    "Session": _object(
        {
            "id": {"type": "string"},
            "charger_id": {"type": "string"},
            "connector_id": {"type": "integer"},
            "id_tag": {"type": "string"},
            "origin": {"type": "string"},
            "started_at": _TIME,
            "stopped_at": _nullable(_TIME),
            "active": {"type": "boolean"},
            "energy_wh": _nullable(_NUMBER),
            "stop_reason": _nullable({"type": "string"}),
            "upstream_transaction_id": _nullable({"type": "string"}),
        }
    ),
    "Sessions": _object(
        {
            "live": {"type": "array", "items": _ref("Session")},
            "history": {
                "type": "array",
                "items": _ref("Session"),
                "description": "Recorded sessions, newest first.",
            },
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        }
    ),
    "Uplink": _object(
        {
            "id": {"type": "string"},
            "protocol": {"type": "string"},
            "url": {"type": "string"},
            "connected": {"type": "boolean"},
            "accepted": {"type": "boolean"},
            "queue_depth": _nullable({"type": "integer"}),
        }
    ),
    "VehicleNeed": _object(
        {
            "charger_id": {"type": "string"},
            "session_id": _nullable({"type": "string"}),
            "energy_kwh": _nullable(_NUMBER),
            "departure": _nullable(_TIME),
            "energy_left_kwh": _nullable(_NUMBER),
        }
    ),
    "LoadHistory": _object(
        {
            "series": {"type": "string"},
            "sample_interval_s": _NUMBER,
            "samples": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": _NUMBER,
                    "minItems": 4,
                    "maxItems": 4,
                    "description": "[unix time, L1, L2, L3]",
                },
            },
        }
    ),
    "Snapshot": _object(
        {
            "site": _ref("Site"),
            "circuits": {"type": "array", "items": _ref("Circuit")},
            "chargers": {"type": "array", "items": _ref("Charger")},
            "sessions": {"type": "array", "items": _ref("Session")},
            "uplinks": {"type": "array", "items": _ref("Uplink")},
            "alarms": {"type": "array", "items": _ref("Alarm")},
            "problems": {
                "type": "array",
                "items": {"type": "string"},
                "description": "What `evgw status` reports (exit 1 when not empty).",
            },
        }
    ),
    "Alarm": {
        "type": "object",
        "description": "An alarm from raised to cleared (gateway.monitoring.alarms).",
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "source": {"type": "string"},
            "severity": {"type": "string"},
            "message": {"type": "string"},
            "raised_at": _TIME,
            "cleared_at": _nullable(_TIME),
        },
    },
    "Alarms": _object(
        {
            "active": {"type": "array", "items": _ref("Alarm")},
            "history": {"type": "array", "items": _ref("Alarm")},
        }
    ),
    "ChargerLimit": {
        "type": "object",
        "additionalProperties": False,
        "required": ["max_current_a"],
        "properties": {
            "max_current_a": _nullable({"type": "number", "minimum": 0, "maximum": 100000}),
        },
        "description": "A cap in A per phase (null lifts the API's cap).",
    },
    "CircuitLimit": {
        "type": "object",
        "additionalProperties": False,
        "required": ["max_current_a"],
        "properties": {
            "max_current_a": {
                "anyOf": [
                    {"type": "number", "minimum": 0, "maximum": 100000},
                    {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 100000},
                        "minItems": 3,
                        "maxItems": 3,
                    },
                    {"type": "null"},
                ]
            },
        },
        "description": "One limit for every phase, one per phase, or null to lift it.",
    },
    "Availability": {
        "type": "object",
        "additionalProperties": False,
        "required": ["availability"],
        "properties": {"availability": {"type": "string", "enum": ["operative", "inoperative"]}},
    },
    "VehicleNeedWrite": {
        "type": "object",
        "additionalProperties": False,
        "required": ["energy_kwh", "departure"],
        "properties": {
            "energy_kwh": {"type": "number", "minimum": 0, "maximum": 1000},
            "departure": {
                **_TIME,
                "description": "With a time zone, e.g. 2026-01-01T06:30:00Z; at most 7 days"
                " ahead (one already past counts as now)",
            },
        },
    },
}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR: Final = _ref("Error")


def _errors(*statuses: int) -> dict[str, Schema]:
    words = {
        400: "Bad request: the message names the field",
        401: "No or wrong credentials",
        403: "The read role may not do this",
        404: "Unknown charger, circuit or series",
        409: "Not possible in the site's current state (no balancing, no session)",
        413: "Body too large",
        503: "Too many live streams open",
    }
    return {str(status): _json(_ERROR, words[status]) for status in statuses}


def _read(summary: str, schema: Schema, *errors: int, **extra: Any) -> Schema:
    return {
        "summary": summary,
        "responses": {"200": _json(schema), **_errors(401, *errors)},
        **extra,
    }


def _write(summary: str, body: str, schema: Schema) -> Schema:
    return {
        "summary": summary,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        },
        "responses": {"200": _json(schema), **_errors(400, 401, 403, 404, 409, 413)},
    }


def _path_parameter(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_CHARGER_ID: Final = [_path_parameter("charger_id")]
_CIRCUIT_ID: Final = [_path_parameter("circuit_id")]
_OPEN: Final[list[Schema]] = []


def _static(summary: str, media_type: str) -> Schema:
    return {
        "summary": summary,
        "security": _OPEN,
        "responses": {
            "200": {
                "description": "OK",
                "content": {media_type: {"schema": {"type": "string"}}},
            }
        },
    }


PATHS: Final[dict[str, Schema]] = {
    "/": {"get": _static("The dashboard (asks for a token itself)", "text/html")},
    "/dashboard.js": {"get": _static("The dashboard's script", "text/javascript")},
    "/dashboard.css": {"get": _static("The dashboard's style sheet", "text/css")},
    f"{API_PREFIX}/openapi.json": {
        "get": {
            "summary": "This description",
            "security": _OPEN,
            "responses": {"200": _json({"type": "object"})},
        }
    },
    f"{API_PREFIX}/me": {"get": _read("The user the token belongs to", _ref("Me"))},
    f"{API_PREFIX}/site": {"get": _read("The site at a glance", _ref("Site"))},
    f"{API_PREFIX}/snapshot": {
        "get": _read("Everything the dashboard shows, in one document", _ref("Snapshot"))
    },
    f"{API_PREFIX}/events": {
        "get": {
            "summary": "Server-sent events: `snapshot` (a Snapshot) on change, at least every 1 s",
            "responses": {
                "200": {
                    "description": "An endless text/event-stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(401, 503),
            },
        }
    },
    f"{API_PREFIX}/circuits": {
        "get": _read("The fuse tree", {"type": "array", "items": _ref("Circuit")})
    },
    f"{API_PREFIX}/circuits/{{circuit_id}}": {
        "parameters": _CIRCUIT_ID,
        "get": _read("One circuit", _ref("Circuit"), 404),
    },
    f"{API_PREFIX}/circuits/{{circuit_id}}/limit": {
        "parameters": _CIRCUIT_ID,
        "put": _write(
            "Limit a circuit below its fuse (admin; the tightest limit applies)",
            "CircuitLimit",
            _ref("Circuit"),
        ),
    },
    f"{API_PREFIX}/chargers": {
        "get": _read("Every charger", {"type": "array", "items": _ref("Charger")})
    },
    f"{API_PREFIX}/chargers/{{charger_id}}": {
        "parameters": _CHARGER_ID,
        "get": _read("One charger", _ref("Charger"), 404),
    },
    f"{API_PREFIX}/chargers/{{charger_id}}/limit": {
        "parameters": _CHARGER_ID,
        "put": _write(
            "Cap a charger (admin; needs load balancing)", "ChargerLimit", _ref("Charger")
        ),
    },
    f"{API_PREFIX}/chargers/{{charger_id}}/availability": {
        "parameters": _CHARGER_ID,
        "put": _write(
            "Put a charger in or out of service at once (admin): inoperative, it gets no"
            " current and shows Unavailable",
            "Availability",
            _ref("Charger"),
        ),
    },
    f"{API_PREFIX}/chargers/{{charger_id}}/vehicle-need": {
        "parameters": _CHARGER_ID,
        "get": _read(
            "The need the balancing holds for the active session", _ref("VehicleNeed"), 404
        ),
        "put": _write(
            "Tell the balancing what the vehicle in the active session needs (admin)",
            "VehicleNeedWrite",
            _ref("VehicleNeed"),
        ),
    },
    f"{API_PREFIX}/sessions": {
        "get": _read(
            "Live sessions, and one page of the recorded ones (newest first)",
            _ref("Sessions"),
            400,
            parameters=[
                _query("charger_id", {"type": "string"}, "Only this charger's sessions"),
                _query(
                    "limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Page size (50)"
                ),
                _query(
                    "offset",
                    {"type": "integer", "minimum": 0, "maximum": 1000000000},
                    "Sessions to skip",
                ),
            ],
        )
    },
    f"{API_PREFIX}/uplinks": {
        "get": _read(
            "Each OCPP station's connection and offline queue",
            {"type": "array", "items": _ref("Uplink")},
        )
    },
    f"{API_PREFIX}/load-history": {
        "get": _read(
            "Per-phase current of the last hours (the site, or one circuit)",
            _ref("LoadHistory"),
            400,
            404,
            parameters=[
                _query("series", {"type": "string"}, '"site" (default) or a circuit id'),
                _query(
                    "minutes",
                    {"type": "integer", "minimum": 1, "maximum": 1440},
                    "How far back (default: all that is kept)",
                ),
            ],
        )
    },
}

OPTIONAL_PATHS: Final[dict[str, dict[str, Schema]]] = {
    "alarms": {
        f"{API_PREFIX}/alarms": {"get": _read("Active alarms and their history", _ref("Alarms"))}
    },
    "metrics": {
        "/metrics": {
            "get": {
                "summary": "Prometheus exposition (read role)",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401),
                },
            }
        }
    },
    "diagnostics": {
        f"{API_PREFIX}/diagnostics": {
            method: {
                "summary": "A diagnostics bundle (tar.gz: logs, config without secrets, states;"
                " admin)",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/gzip": {
                                "schema": {"type": "string", "contentMediaType": "application/gzip"}
                            }
                        },
                    },
                    **_errors(401, 403),
                },
            }
            for method in ("get", "post")
        }
    },
}


def openapi_document(
    *, alarms: bool = False, metrics: bool = False, diagnostics: bool = False
) -> dict[str, Any]:
    """The description, with the optional routes this installation serves."""
    paths = copy.deepcopy(PATHS)
    for name, wanted in (("alarms", alarms), ("metrics", metrics), ("diagnostics", diagnostics)):
        if wanted:
            paths.update(copy.deepcopy(OPTIONAL_PATHS[name]))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "evgw local API",
            "version": __version__,
            "description": (
                "The gateway's local API: the site, its fuse tree, chargers, sessions, vehicle"
                " needs, manual limits, availability and uplinks. Every route except the"
                " dashboard files and this description needs a token (Bearer, or HTTP Basic"
                " with the token as password); writes need the admin role."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "schemas": copy.deepcopy(SCHEMAS),
        },
        "paths": paths,
    }
