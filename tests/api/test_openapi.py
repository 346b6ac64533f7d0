"""The OpenAPI description and the server cannot drift: every route is described, every
described path is routed, and schemathesis, generating requests from the description against
a running gateway, finds no server error and no answer outside the description."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.api.conftest import LiveSite

EXAMPLES_PER_OPERATION = 15
"""Bounded so the whole run takes well under a minute on the shared machine; twice per
operation (random ids, then the real ones)."""
STREAMING = {"/api/v1/events"}
"""An endless event stream: schemathesis would wait for its end; test_api reads it."""


def routed(site: LiveSite) -> set[tuple[str, str]]:
    api = site.gateway.api
    assert api is not None
    found = set()
    for route in api.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        assert path, f"route without a path: {route}"
        found.add((route.method.lower(), path))
    return found


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


async def test_every_route_is_described_and_every_description_routed(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    async with client.get(site.url + "/api/v1/openapi.json") as response:
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert routed(site) == described(document)
    # The monitoring parts are in this installation: served and described.
    assert ("get", "/api/v1/alarms") in described(document)


def run_schemathesis(document: dict[str, Any], base_url: str, token: str) -> int:
    """Every operation, with generated and with real ids; returns how many requests went."""
    schema = schemathesis.openapi.from_dict(document)
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    sent = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the description does not load: {result}"
        operation = result.ok()
        if operation.path in STREAMING:
            continue
        real_ids = {
            name: value
            for name, value in (("charger_id", "CP-1"), ("circuit_id", "board-A"))
            if "{" + name + "}" in operation.path
        }
        strategies = [operation.as_strategy()]
        if real_ids:
            strategies.append(operation.as_strategy(path_parameters=real_ids))
        for strategy in strategies:

            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=strategy)
            def call(case: Any) -> None:
                nonlocal sent
                case.call_and_validate(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {token}"},
                    checks=checks,
                    timeout=30,
                )
                sent += 1

            call()
    return sent


async def test_schemathesis_finds_no_server_error_and_no_undescribed_answer(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    site.simulators[0].plug_in(rfid="TAG-FUZZ")  # a live session for the vehicle-need writes
    async with client.get(site.url + "/api/v1/openapi.json") as response:
        document = await response.json()
    # Requests is synchronous: it runs in a thread while the gateway serves on this loop.
    sent = await asyncio.to_thread(run_schemathesis, document, site.url, site.admin_token)
    assert sent >= len(described(document))
