"""The OpenAPI description served at /ocpi/openapi.json is generated from the registered
modules, and schemathesis (bounded examples) run against the running OCPI server with valid
tokens finds no 5xx and no response outside the description."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ocpi.conftest import RouteCase, live_ocpi, registered_routes
from tests.ocpi.emsp_peer import EmspPeer

EXAMPLES = 30
"""Per operation and generation mode: bounded so the whole run stays well under 90 s."""
SKIPPED = {("credentials", "POST"), ("credentials", "PUT"), ("credentials", "DELETE")}
"""Registration writes: a generated `url` would make the gateway call arbitrary hosts, and a
DELETE would end the registration the run depends on (test_credentials covers them)."""


class BackgroundGateway:
    """A gateway with an eMSP and a hub registered, on its own event loop in a thread (the
    schemathesis client is synchronous)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ready = threading.Event()
        self.base = ""
        self.tokens: dict[str, str] = {}
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackgroundGateway:
        self._thread.start()
        if not self.ready.wait(60):
            raise TimeoutError("gateway did not start")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        emsp, hub = EmspPeer(), EmspPeer(country_code="BE", party_id="HUB", role="HUB")
        await emsp.start()
        await hub.start()
        try:
            async with live_ocpi(self.tmp_path, issued=("emsp", "hub"), chargers=2) as live:
                for name, peer in (("emsp", emsp), ("hub", hub)):
                    reply = await peer.register_with(live.versions_url, live.token_a[name])
                    assert reply.status_code == 1000, reply
                    assert peer.token_to_cpo is not None
                    self.tokens[name] = peer.token_to_cpo
                self.base = live.base
                self.ready.set()
                await self._stop.wait()
        except BaseException as error:
            self.error = error
            self.ready.set()
            raise
        finally:
            await emsp.stop()
            await hub.stop()


@pytest.fixture
def background(tmp_path: Path) -> Iterator[BackgroundGateway]:
    with BackgroundGateway(tmp_path) as running:
        yield running


def test_openapi_lists_every_registered_route(background: BackgroundGateway) -> None:
    import requests

    document = requests.get(f"{background.base}/ocpi/openapi.json", timeout=30).json()
    served = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    routes: list[RouteCase] = registered_routes()
    assert len(served) == len(routes)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert "401" in operation["responses"]
            assert operation["security"] == [{"token": []}]
            for parameter in operation["parameters"]:
                if parameter["in"] == "path":
                    assert f"{{{parameter['name']}}}" in path


def exercise(
    operation: Any, mode: GenerationMode, checks: list[Any], base: str, auth: dict[str, str]
) -> None:
    """Run `EXAMPLES` generated cases of one operation against the server."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=auth, timeout=30)
        case.validate_response(response, checks=checks)

    run()


def test_schemathesis_finds_no_server_error(background: BackgroundGateway) -> None:
    import base64

    schema = schemathesis.openapi.from_url(f"{background.base}/ocpi/openapi.json")
    headers = {
        name: {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}
        for name, token in background.tokens.items()
    }
    tested = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            pytest.fail(f"our description has an invalid operation: {result!r}")
        operation: Any = result.ok()
        module = operation.definition.raw["tags"][0]
        if (module, operation.method.upper()) in SKIPPED:
            continue
        auth = headers["hub" if module == "hubclientinfo" else "emsp"]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            checks: list[Any] = [not_a_server_error]
            if mode is GenerationMode.POSITIVE:
                checks += [
                    response_schema_conformance,
                    status_code_conformance,
                    content_type_conformance,
                ]

            exercise(operation, mode, checks, background.base, auth)
            tested += 1
    assert tested >= 2 * 8
