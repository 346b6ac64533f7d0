"""The OCPI 2.2.1 HTTP server (aiohttp): module routing, token authentication against the
partner registry, the response envelope, and an OpenAPI description generated from the
registered modules (served at `/ocpi/openapi.json`, so it cannot drift from the routes).

How a module plugs in (the registration interface)
==================================================

A module is a `Module` value built by a factory function that takes the `OcpiContext` (the
site, the store, the partner registry, the push queue, the HTTP client to partners, the
configuration)::

    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest, OcpiResponse, Route
    from gateway.ocpi.partners import PartyRole
    from gateway.ocpi.transport import OcpiStatus, Page, paginate, invalid, not_found

    def sessions_module(context: OcpiContext) -> Module:
        async def list_sessions(request: OcpiRequest) -> Page:
            assert request.page is not None          # set because the route is paginated
            return paginate(all_sessions, request.page, lambda s: s.last_updated, to_json)

        async def put_preferences(request: OcpiRequest) -> OcpiResponse:
            body = request.body                      # already validated against the schema
            ...
            return OcpiResponse(data={"result": "ACCEPTED"})

        return Module(
            identifier="sessions",                   # the OCPI ModuleID
            roles=(InterfaceRole.SENDER,),           # our interface role(s), listed in details
            partner_roles=frozenset({PartyRole.EMSP, PartyRole.HUB}),   # who may call it
            routes=(
                Route("GET", "", list_sessions, summary="Sessions, paginated",
                      paginated=True, require_date_from=True, response_schema=SESSION),
                Route("PUT", "/{session_id}/charging_preferences", put_preferences,
                      request_schema=PREFERENCES, response_schema=PREFERENCES_RESPONSE,
                      path_params={"session_id": {"type": "string", "maxLength": 36}}),
            ),
            run=None,   # optional: a coroutine function run while the server runs
        )

- Paths are relative to the module's URL `<public_url>/ocpi/2.2.1/<identifier>`, in aiohttp's
  `{name}` syntax; every `{name}` needs an entry in `path_params` (a JSON schema; strings).
- A handler receives an `OcpiRequest`: `.partner` (the authenticated `Partner`), `.body`
  (parsed JSON, validated against `request_schema` — a body that does not match never
  reaches the handler: 2001, HTTP 200; invalid JSON: 2001, HTTP 400), `.match` (path
  params), `.query`, `.page` (`PageParams`, for paginated routes), `.routing`, `.request_id`.
- A handler returns an `OcpiResponse` (data, status_code, http_status, message, headers),
  a `Page` (paginated routes: the server adds Link, X-Total-Count and X-Limit), or plain
  JSON data (1000, HTTP 200). It raises `OcpiError` (see `transport.invalid`,
  `transport.not_found`) for OCPI errors; anything else it raises becomes 3000/HTTP 500 and is
  logged, so do not rely on that.
- `response_schema` describes `data` on success (for a paginated route: one list item); it
  goes into the OpenAPI description and the schemathesis test checks responses against it.
  Schemas are JSON Schema 2020-12 dicts; allow unknown fields (no `additionalProperties:
  false`): OCPI peers must tolerate them.
- Further Route options: `query_params` (documented query parameters, JSON schemas) with
  `required_query` (missing → 2001), `max_limit` (the page-size cap reported in X-Limit),
  `success_status` (e.g. 201).
- `partner_roles` empty: any registered partner may call. The CREDENTIALS_TOKEN_A we issue is
  accepted only on routes with `token_a=True` (versions and credentials); elsewhere 401.
- Register a factory by adding it to `module_factories()` in `gateway/ocpi/service.py`.

Pushing to partners (`gateway/ocpi/pushes.py`)
==============================================

`context.pushes.push(module, method, path, body, key=...)` queues one request to every
registered partner that lists a RECEIVER endpoint for `module` (e.g. "sessions"), sent to
`<their endpoint URL><path>` with their token, routing and request-id headers. It never
blocks and never raises: each partner has its own bounded queue and sender task with retry
and back-off; when a queue is full the oldest entry is dropped (the partner can always
pull). `key` coalesces: a newer push with the same key replaces a queued one (e.g.
`key=f"evse:{uid}"` for status PATCHes, `f"session:{id}"` for session PUT/PATCH; use
`key=None` for a CDR POST). `on_done=` (an async callable) gets each accepting partner's
`OcpiReply` (e.g. a CDR POST's `Location` header). Example::

    context.pushes.push("sessions", "PUT", f"/{cc}/{pid}/{session_id}", session_json,
                        key=f"session:{session_id}")

`context.pushes.send(partner_id, method, url, body)` posts to one partner at an absolute URL
(e.g. a CommandResult to a command's `response_url`) through the same queue.
`context.client` (`gateway.ocpi.client.OcpiClient`) is for direct awaited calls to a
partner (e.g. real-time authorization), with its own timeout.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.ocpi import transport
from gateway.ocpi.partners import InterfaceRole, Partner, PartnerRegistry, PartyRole
from gateway.ocpi.transport import (
    HEADER_CORRELATION_ID,
    HEADER_LIMIT,
    HEADER_REQUEST_ID,
    HEADER_TOTAL_COUNT,
    OcpiError,
    OcpiStatus,
    Page,
    PageParams,
    Routing,
)

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.core.site import Site
    from gateway.ocpi.client import OcpiClient
    from gateway.ocpi.config import OcpiSection
    from gateway.ocpi.pushes import Pushes
    from gateway.store import Store

logger = logging.getLogger("gateway.ocpi.server")

OCPI_ROOT: Final = "/ocpi"
OPENAPI_PATH: Final = "/ocpi/openapi.json"

JsonSchema = dict[str, Any]
Handler = Callable[["OcpiRequest"], Awaitable[Any]]

_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint of a module: `method` on the module URL + `path`."""

    method: str
    path: str
    handler: Handler
    summary: str = ""
    request_schema: JsonSchema | None = None
    """The JSON body, validated before the handler runs; None = no body."""
    response_schema: JsonSchema | None = None
    """`data` on success (one item for a paginated route); None = no data."""
    path_params: Mapping[str, JsonSchema] = field(default_factory=dict)
    query_params: Mapping[str, JsonSchema] = field(default_factory=dict)
    """Further query parameters (documented; the handler reads `request.query`)."""
    required_query: frozenset[str] = frozenset()
    paginated: bool = False
    require_date_from: bool = False
    max_limit: int = transport.MAX_PAGE_LIMIT
    token_a: bool = False
    """Accept the CREDENTIALS_TOKEN_A we issued (versions and credentials only)."""
    success_status: int = 200

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"route method must be one of {sorted(_METHODS)}: {self.method!r}")
        names = set(_PATH_PARAM.findall(self.path))
        if names != set(self.path_params):
            raise ValueError(
                f"route {self.method} {self.path!r}: path_params must describe exactly {names}"
            )


@dataclass(frozen=True, slots=True)
class Module:
    """An OCPI module as served: its ModuleID, our interface role(s) for it, its routes."""

    identifier: str
    roles: tuple[InterfaceRole, ...]
    routes: tuple[Route, ...]
    partner_roles: frozenset[PartyRole] = frozenset()
    """The partner roles allowed to call (empty: any registered partner)."""
    run: Callable[[], Coroutine[Any, Any, None]] | None = None
    """Runs while the server runs (started after the server listens, cancelled at stop)."""
    path: str | None = None
    """The module's URL path; default `/ocpi/2.2.1/<identifier>`."""
    listed: bool = True
    """Listed in the version details' endpoints."""

    @property
    def base_path(self) -> str:
        return (
            self.path
            if self.path is not None
            else f"{OCPI_ROOT}/{transport.VERSION}/{self.identifier}"
        )


@dataclass(frozen=True, slots=True)
class OcpiContext:
    """What a module factory gets: everything the gateway shares with the OCPI modules."""

    config: GatewayConfig
    ocpi: OcpiSection
    site: Site
    store: Store
    partners: PartnerRegistry
    pushes: Pushes
    client: OcpiClient
    public_url: str
    """Our externally reachable base URL (no trailing slash), for the URLs we hand out."""
    server: OcpiServer
    """The server the modules are registered with (its `endpoints()` for version details)."""
    balancing: Any = None
    """The gateway's `BalancingLoop` when it balances (charging profiles cap through it)."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Objects that several modules built from this context share (e.g. the session book
    behind sessions, CDRs, commands and charging profiles), created by the first factory
    that needs them."""

    def module_url(self, identifier: str) -> str:
        return f"{self.public_url}{OCPI_ROOT}/{transport.VERSION}/{identifier}"


@dataclass(slots=True)
class OcpiRequest:
    """An authenticated request as a handler sees it."""

    http: web.Request
    partner: Partner
    token_a: bool
    """Authenticated with the CREDENTIALS_TOKEN_A (partner not registered yet)."""
    body: Any
    match: Mapping[str, str]
    query: Mapping[str, str]
    page: PageParams | None
    routing: Routing
    request_id: str
    correlation_id: str


@dataclass(slots=True)
class OcpiResponse:
    """A handler's answer. `data=None` leaves `data` out of the envelope."""

    data: Any = None
    status_code: int = OcpiStatus.SUCCESS
    http_status: int = 200
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class OcpiServer:
    """The aiohttp application serving the registered modules. `register()` modules, then
    `start()`; `stop()` closes the listener and cancels module tasks."""

    def __init__(self, partners: PartnerRegistry, *, public_url: str) -> None:
        self.partners = partners
        self.public_url = public_url.rstrip("/")
        self.modules: dict[str, Module] = {}
        self._validators: dict[tuple[str, str, str], Any] = {}
        self.app = web.Application(middlewares=[self._envelope_errors])
        self.app.router.add_get(OPENAPI_PATH, self._openapi)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port: int | None = None

    # --- composition -----------------------------------------------------------------------

    def register(self, module: Module) -> None:
        """Add a module's routes; before `start()`. Raises ValueError for a duplicate."""
        from jsonschema import Draft202012Validator

        if module.identifier in self.modules:
            raise ValueError(f"OCPI module {module.identifier!r} registered twice")
        self.modules[module.identifier] = module
        for route in module.routes:
            if route.request_schema is not None:
                Draft202012Validator.check_schema(route.request_schema)
                self._validators[(module.identifier, route.method, route.path)] = (
                    Draft202012Validator(route.request_schema)
                )
            self.app.router.add_route(
                route.method, module.base_path + route.path, self._wrap(module, route)
            )

    def module_url(self, module: Module) -> str:
        return self.public_url + module.base_path

    def endpoints(self) -> list[dict[str, str]]:
        """The version details' endpoints: one per listed module and interface role."""
        return [
            {"identifier": module.identifier, "role": role.value, "url": self.module_url(module)}
            for module in self.modules.values()
            if module.listed
            for role in module.roles
        ]

    # --- life cycle ------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 = any free port; `self.port` tells which)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        logger.info("OCPI server listening", extra={"host": host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- request handling ------------------------------------------------------------------

    @web.middleware
    async def _envelope_errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Router errors (404, 405) and unexpected failures answered in the OCPI envelope."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return _json_response(
                request,
                transport.envelope(None, OcpiStatus.CLIENT_ERROR, error.reason),
                error.status,
                {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {},
            )
        except Exception:
            logger.exception(
                "OCPI request failed", extra={"method": request.method, "path": request.path}
            )
            return _json_response(
                request,
                transport.envelope(None, OcpiStatus.SERVER_ERROR, "internal error"),
                500,
            )

    def _wrap(
        self, module: Module, route: Route
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return await self._handle(module, route, request)
            except OcpiError as error:
                return _json_response(
                    request,
                    transport.envelope(error.data, error.status_code, error.message),
                    error.http_status,
                )

        return handle

    async def _handle(
        self, module: Module, route: Route, request: web.Request
    ) -> web.StreamResponse:
        authenticated = await self.partners.authenticate(
            transport.token_candidates(request.headers.get("Authorization"))
        )
        if authenticated is None or (authenticated.token_a and not route.token_a):
            return _json_response(
                request,
                transport.envelope(None, OcpiStatus.CLIENT_ERROR, "missing or unknown token"),
                401,
                {"WWW-Authenticate": "Token"},
            )
        partner = authenticated.partner
        if (
            module.partner_roles
            and not authenticated.token_a
            and not module.partner_roles & partner.party_roles
        ):
            return _json_response(
                request,
                transport.envelope(
                    None, OcpiStatus.CLIENT_ERROR, f"{module.identifier}: not open to your role"
                ),
                403,
            )
        body = await self._body(module, route, request)
        for name in route.required_query:
            if not request.query.get(name):
                raise transport.invalid(f"{name}: required query parameter")
        page = (
            PageParams.parse(
                request.query, max_limit=route.max_limit, require_date_from=route.require_date_from
            )
            if route.paginated
            else None
        )
        ocpi_request = OcpiRequest(
            http=request,
            partner=partner,
            token_a=authenticated.token_a,
            body=body,
            match=dict(request.match_info),
            query=request.query,
            page=page,
            routing=Routing.from_headers(request.headers),
            request_id=request.headers.get(HEADER_REQUEST_ID) or transport.new_request_id(),
            correlation_id=request.headers.get(HEADER_CORRELATION_ID) or transport.new_request_id(),
        )
        result = await route.handler(ocpi_request)
        if isinstance(result, Page):
            assert page is not None, "only a paginated route returns a Page"
            headers = {HEADER_TOTAL_COUNT: str(result.total), HEADER_LIMIT: str(result.limit)}
            link = transport.next_link(
                self.public_url + request.path, request.query, result, page.offset
            )
            if link is not None:
                headers["Link"] = link
            return _json_response(request, transport.envelope(list(result.items)), 200, headers)
        if isinstance(result, OcpiResponse):
            return _json_response(
                request,
                transport.envelope(result.data, result.status_code, result.message),
                result.http_status,
                result.headers,
            )
        return _json_response(request, transport.envelope(result), route.success_status)

    async def _body(self, module: Module, route: Route, request: web.Request) -> Any:
        validator = self._validators.get((module.identifier, route.method, route.path))
        if validator is None:
            return None
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise OcpiError(
                OcpiStatus.INVALID_PARAMETERS, "body is not valid JSON", http_status=400
            ) from None
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = ".".join(str(part) for part in first.absolute_path) or "body"
            raise transport.invalid(f"{where}: {first.message}"[:300])
        return body

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.openapi())

    # --- OpenAPI ---------------------------------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 description of every registered route."""
        from gateway.ocpi.openapi import describe

        return describe(self.public_url, self.modules.values())


def _json_response(
    request: web.Request,
    body: dict[str, Any],
    status: int,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    out = dict(headers or {})
    out[HEADER_REQUEST_ID] = request.headers.get(HEADER_REQUEST_ID) or transport.new_request_id()
    out[HEADER_CORRELATION_ID] = (
        request.headers.get(HEADER_CORRELATION_ID) or transport.new_request_id()
    )
    out.update(Routing.from_headers(request.headers).reply().headers())
    return web.json_response(body, status=status, headers=out)
