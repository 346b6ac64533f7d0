"""The smallest schema-valid request payload of every action of a version, built from the
official JSON schemas the codec uses (`rust/ocpp/schemas`): only required properties, the
first enum value, the shortest string the constraints allow. For the test that sends every
action a central system can send and expects an answer to each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[2] / "rust" / "ocpp" / "schemas"
UPLOAD_NOWHERE = "http://127.0.0.1:9/upload/"
"""A location nothing listens on (port 9, discard): uploads fail quickly and harmlessly."""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["definitions"][name]
    return node


def _value(schema: dict[str, Any], node: dict[str, Any], name: str) -> Any:
    node = _resolve(schema, node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        return {
            key: _value(schema, node["properties"][key], key) for key in node.get("required", [])
        }
    if kind == "array":
        return [_value(schema, node["items"], name) for _ in range(node.get("minItems", 1))]
    if kind == "integer":
        return max(1, int(node.get("minimum", 1)))
    if kind == "number":
        return max(1.0, float(node.get("minimum", 1.0)))
    if kind == "boolean":
        return False
    if node.get("format") == "date-time":
        return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if node.get("format") == "uri" or "location" in name.lower():
        return UPLOAD_NOWHERE
    return "x" * max(1, int(node.get("minLength", 1)))


def minimal_request(version: str, action: str) -> dict[str, Any]:
    """`version` is "v16" or "v201"."""
    file = SCHEMAS / version / (f"{action}.json" if version == "v16" else f"{action}Request.json")
    schema = json.loads(file.read_text(encoding="utf-8"))
    payload: dict[str, Any] = _value(schema, schema, action)
    return payload
