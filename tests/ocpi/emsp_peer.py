"""A small eMSP for the OCPI tests: its own aiohttp server on loopback (versions, version
details, credentials, and the receiver endpoints a CPO pushes to: locations, sessions, cdrs,
tariffs, plus the URL CommandResults are posted to) and a client for the CPO's endpoints.

It records every request it receives (`received`), can be told to answer 503 for a while
(`down`), and to accept only raw tokens (`raw_tokens`), like many 2.1.1/2.2 peers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

VERSION = "2.2.1"
RECEIVERS = ("locations", "sessions", "cdrs", "tariffs")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def status_code(self) -> Any:
        return self.body.get("status_code") if isinstance(self.body, dict) else None


def _envelope(data: Any = None, status_code: int = 1000, message: str | None = None) -> Any:
    body: dict[str, Any] = {
        "status_code": status_code,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if data is not None:
        body["data"] = data
    if message:
        body["status_message"] = message
    return body


@dataclass
class EmspPeer:
    """An eMSP with party `country_code`/`party_id`."""

    country_code: str = "DE"
    party_id: str = "EMS"
    role: str = "EMSP"
    raw_tokens: bool = False
    """Accept (and send) raw tokens only, refusing base64."""
    down: bool = False
    """Answer every request with 503 (a partner that is down)."""
    gate: asyncio.Event | None = None
    """When set, requests wait for this event before being answered (a partner that
    hangs)."""
    offered_version: str = VERSION
    """The version its versions endpoint lists (a 2.1.1-only peer for the error paths)."""
    with_credentials_endpoint: bool = True
    refuse_pushes: bool = False
    """Answer pushes with OCPI 2001 (a partner that rejects the object for good)."""
    received: list[Received] = field(default_factory=list)
    token_a: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    """The token A it issues to a CPO that registers with it."""
    accepted: set[str] = field(default_factory=set)
    """Tokens that may call it (its token A until used, then the token it issued)."""
    token_to_cpo: str | None = None
    """The token it uses to call the CPO."""
    cpo_versions_url: str | None = None
    cpo_endpoints: dict[str, str] = field(default_factory=dict)
    cdr_counter: int = 0

    def __post_init__(self) -> None:
        self.accepted.add(self.token_a)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._http: aiohttp.ClientSession | None = None

    # --- server ----------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocpi"

    @property
    def versions_url(self) -> str:
        return f"{self.base}/versions"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/ocpi/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _token_of(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme != "Token" or not credential:
            return None
        if self.raw_tokens:
            return credential
        try:
            return base64.b64decode(credential, validate=True).decode()
        except ValueError:
            return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        async with self._changed:
            self.received.append(
                Received(
                    request.method,
                    request.path,
                    body,
                    dict(request.headers),
                    asyncio.get_running_loop().time(),
                )
            )
            self._changed.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            return web.json_response(_envelope(None, 3000, "down"), status=503)
        if self._token_of(request) not in self.accepted:
            return web.json_response(_envelope(None, 2000, "unauthorized"), status=401)
        tail = request.match_info["tail"]
        if tail == "versions":
            offered = [{"version": self.offered_version, "url": f"{self.base}/{VERSION}"}]
            return web.json_response(_envelope(offered))
        if tail == VERSION:
            endpoints = [
                {
                    "identifier": "credentials",
                    "role": "SENDER",
                    "url": f"{self.base}/{VERSION}/credentials",
                },
                {"identifier": "tokens", "role": "SENDER", "url": f"{self.base}/{VERSION}/tokens"},
            ] + [
                {"identifier": name, "role": "RECEIVER", "url": f"{self.base}/{VERSION}/{name}"}
                for name in RECEIVERS
            ]
            if not self.with_credentials_endpoint:
                endpoints = [e for e in endpoints if e["identifier"] != "credentials"]
            return web.json_response(_envelope({"version": VERSION, "endpoints": endpoints}))
        if tail == f"{VERSION}/credentials":
            return await self._credentials(request, body)
        if self.refuse_pushes and request.method in ("PUT", "PATCH", "POST"):
            return web.json_response(_envelope(None, 2001, "refused"))
        if tail.startswith(f"{VERSION}/cdrs") and request.method == "POST":
            self.cdr_counter += 1
            return web.json_response(
                _envelope(),
                headers={"Location": f"{self.base}/{VERSION}/cdrs/{self.cdr_counter}"},
            )
        return web.json_response(_envelope())

    async def _credentials(self, request: web.Request, body: Any) -> web.StreamResponse:
        """The receiver side, for a CPO that registers with us."""
        if request.method == "GET":
            return web.json_response(_envelope(self.credentials(self._token_of(request) or "")))
        if request.method == "DELETE":
            self.accepted.clear()
            return web.json_response(_envelope())
        if request.method not in ("POST", "PUT") or not isinstance(body, dict):
            return web.json_response(_envelope(None, 2001, "bad request"))
        cpo_token = str(body["token"])
        versions = await self.call("GET", str(body["url"]), token=cpo_token)
        details_url = versions.data[0]["url"]
        details = await self.call("GET", details_url, token=cpo_token)
        self.cpo_endpoints = {e["identifier"]: e["url"] for e in details.data["endpoints"]}
        self.cpo_versions_url = str(body["url"])
        self.token_to_cpo = cpo_token
        issued = secrets.token_urlsafe(24)
        self.accepted = {issued}
        return web.json_response(_envelope(self.credentials(issued)))

    def credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": self.role,
                    "business_details": {"name": f"Test {self.role}"},
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                }
            ],
        }

    async def wait_for(
        self, predicate: Callable[[Received], bool], within_s: float = 30.0
    ) -> Received:
        """The first received request matching `predicate`, waiting for it if needed."""
        async with asyncio.timeout(within_s):
            async with self._changed:
                while True:
                    for item in self.received:
                        if predicate(item):
                            return item
                    await self._changed.wait()

    # --- client ----------------------------------------------------------------------------

    def _authorization(self, token: str) -> str:
        if self.raw_tokens:
            return f"Token {token}"
        return "Token " + base64.b64encode(token.encode()).decode()

    async def call(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        assert self._http is not None
        sent = dict(headers or {})
        used = token if token is not None else self.token_to_cpo
        if used is not None and "Authorization" not in sent:
            sent["Authorization"] = self._authorization(used)
        data: bytes | None = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        async with self._http.request(method, url, data=data, headers=sent, params=params) as r:
            text = await r.read()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text.decode(errors="replace")
            return Reply(r.status, parsed, dict(r.headers))

    async def register_with(self, cpo_versions_url: str, token_a: str) -> Reply:
        """The initiator side: read the CPO's versions with its token A, POST our credentials
        with a fresh token B, keep the token C it answers with."""
        versions = await self.call("GET", cpo_versions_url, token=token_a)
        assert versions.status == 200, versions
        details_url = next(v["url"] for v in versions.data if v["version"] == VERSION)
        details = await self.call("GET", details_url, token=token_a)
        self.cpo_endpoints = {e["identifier"]: e["url"] for e in details.data["endpoints"]}
        token_b = secrets.token_urlsafe(24)
        self.accepted = {token_b}
        reply = await self.call(
            "POST", self.cpo_endpoints["credentials"], token=token_a, body=self.credentials(token_b)
        )
        if reply.status == 200 and reply.status_code == 1000:
            self.token_to_cpo = reply.data["token"]
            self.cpo_versions_url = cpo_versions_url
        return reply

    async def update_registration(self) -> Reply:
        """PUT new credentials (a new token B); keep the new token C."""
        token_b = secrets.token_urlsafe(24)
        old = set(self.accepted)
        self.accepted = old | {token_b}
        reply = await self.call(
            "PUT", self.cpo_endpoints["credentials"], body=self.credentials(token_b)
        )
        if reply.status == 200 and reply.status_code == 1000:
            self.token_to_cpo = reply.data["token"]
            self.accepted = {token_b}
        return reply

    async def unregister(self) -> Reply:
        return await self.call("DELETE", self.cpo_endpoints["credentials"])
