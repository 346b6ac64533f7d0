"""The local HTTP API and the dashboard, on aiohttp: `ApiServer(gateway, config.api)`.

Routes (every one described in `gateway/api/openapi.py`, served at `/api/v1/openapi.json`):

- `/`, `/dashboard.js`, `/dashboard.css`: the dashboard, open (it asks for a token itself);
  `/api/v1/openapi.json`: the description, open (it holds no site data).
- Every other `/api/v1/...` route and `/metrics` need a user's token (`gateway.api.auth`);
  `/metrics` is open to the read role like every GET, so a Prometheus scrape job needs a
  read token (`authorization: {credentials: ...}` in its config).
- Writes (PUT, POST) and the diagnostics bundle need the admin role.

Errors are JSON `{"error": "..."}`: 400 for a bad body or query naming the field, 401, 403,
404 for an unknown charger, circuit or route, 409 for a write the site's state does not allow
now (no load balancing configured, no active session). An unexpected failure is logged and
answered 500 without taking anything down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.api.auth import Credentials, Principal, Unauthenticated
from gateway.api.load_history import LoadHistory
from gateway.api.openapi import API_PREFIX, openapi_document
from gateway.api.views import (
    API_SOURCE,
    JsonObject,
    charger_view,
    chargers_view,
    circuits_view,
    iso,
    live_sessions,
    problems,
    session_view,
    site_currents,
    site_view,
    uplinks_view,
    vehicle_need_view,
)
from gateway.config import ApiSection

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger("gateway.api")

PUSH_INTERVAL_S: Final = 1.0
"""The dashboard's live stream sends a snapshot at least this often (the issue's ~1 s)."""
EVENT_SETTLE_S: Final = 0.1
"""After a site event, wait this long so a burst of events makes one snapshot."""
BIND_RETRY_S: Final = 30.0
"""How often a busy API address is tried again: another process may free it."""
MAX_STREAMS: Final = 32
"""Live streams open at once (each builds a snapshot a second): far more screens than a depot
has, few enough that a runaway client cannot starve the balancing of CPU."""
MAX_PAGE: Final = 500
"""The largest page of session history one request returns (bounds the response)."""
MAX_OFFSET: Final = 1_000_000_000
"""Far beyond any history a store holds; bounds the query."""
MAX_BODY_BYTES: Final = 16 * 1024
"""Every write body is a few fields; anything larger is refused before it is parsed."""
MAX_CURRENT_A: Final = 100_000.0
"""The config's bound on a circuit limit; no limit set through the API may exceed it."""
MAX_HISTORY_MINUTES: Final = 1440
"""The longest window a load-history request names (a day); it gets what is kept of it."""
MAX_DEPARTURE_AHEAD: Final = timedelta(days=7)
"""A departure further ahead is a typo (a wrong year), not a vehicle's plan."""
MAX_ENERGY_KWH: Final = 1000.0
"""The config's bound on energy_needed_kwh: more than any vehicle battery."""
STATIC_FILES: Final = {
    "/": ("dashboard.html", "text/html"),
    "/dashboard.js": ("dashboard.js", "text/javascript"),
    "/dashboard.css": ("dashboard.css", "text/css"),
}
OPEN_PATHS: Final = frozenset({*STATIC_FILES, f"{API_PREFIX}/openapi.json"})
ADMIN_READS: Final = frozenset({f"{API_PREFIX}/diagnostics"})

_PRINCIPAL: Final = web.RequestKey("principal", Principal)


class ApiError(Exception):
    """An answer other than 200, with its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _optional_features() -> dict[str, Any]:
    """The monitoring helpers, when present in this installation: `metrics`, `bundle`."""
    found: dict[str, Any] = {}
    # Imported by name: they are written alongside, and an installation without them serves
    # (and describes) everything else.
    for key, module, name in (
        ("metrics", "gateway.monitoring.metrics", "metrics_exposition"),
        ("bundle", "gateway.diagnostics.bundle", "build_diagnostics_bundle"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            found[key] = getattr(importlib.import_module(module), name)
    return found


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes (alarms) as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class ApiServer:
    """Serves the API and the dashboard for `gateway`; `await run()` until cancelled (it
    binds in `start()`, which `run()` calls when nobody did)."""

    def __init__(
        self,
        gateway: Gateway,
        section: ApiSection,
        *,
        history: LoadHistory | None = None,
        push_interval_s: float = PUSH_INTERVAL_S,
    ) -> None:
        self.gateway = gateway
        self.section = section
        self.credentials = Credentials(section.users)
        self.history = history or LoadHistory()
        self.push_interval_s = push_interval_s
        self.features = _optional_features()
        self.port: int | None = None
        """The bound port, once started (the configured one, or the one picked for 0)."""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._streams = 0
        self.bind_retry_s = BIND_RETRY_S
        self.max_streams = MAX_STREAMS
        self._app: web.Application | None = None

    @property
    def app(self) -> web.Application:
        """The aiohttp application; built on first use, so that parts the gateway gains
        after this server was made (its alarm monitor) are served too."""
        if self._app is None:
            self._app = self._build_app()
        return self._app

    @property
    def has_alarms(self) -> bool:
        return getattr(self.gateway, "alarms", None) is not None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the API server is not started")
        host = self.section.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        return f"http://{'[' + shown + ']' if ':' in shown else shown}:{self.port}"

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve. Raises OSError when the address cannot be bound."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.section.host, self.section.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            logger.error(
                "local API cannot listen: %s",
                error,
                extra={"host": self.section.host, "port": self.section.port},
            )
            raise
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.section.port
        logger.info("local API listening", extra={"url": self.url})

    async def run(self) -> None:
        """Serve and sample the load history until cancelled, then stop. An address that
        cannot be bound is retried every `BIND_RETRY_S` (logged each time): the chargers go
        on being served and balanced without the API."""
        try:
            while True:
                try:
                    await self.start()
                    break
                except OSError:
                    await asyncio.sleep(self.bind_retry_s)
            while True:
                try:
                    self.sample_load()
                except Exception:
                    logger.exception("could not sample the load history")
                await asyncio.sleep(self.history.sample_interval_s)
        finally:
            await self.stop()

    async def stop(self) -> None:
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def sample_load(self, at: float | None = None) -> None:
        """Record the site's and every circuit's current per phase now."""
        at = time.time() if at is None else at
        self.history.add("site", at, site_currents(self.gateway))
        for circuit in circuits_view(self.gateway):
            if circuit["measured_a"] is not None:
                self.history.add(circuit["id"], at, circuit["measured_a"])

    # --- application -----------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._authenticate], client_max_size=MAX_BODY_BYTES
        )
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/", self._static),
            ("GET", "/dashboard.js", self._static),
            ("GET", "/dashboard.css", self._static),
            ("GET", f"{API_PREFIX}/openapi.json", self._openapi),
            ("GET", f"{API_PREFIX}/me", self._me),
            ("GET", f"{API_PREFIX}/site", self._site),
            ("GET", f"{API_PREFIX}/snapshot", self._snapshot_route),
            ("GET", f"{API_PREFIX}/events", self._events),
            ("GET", f"{API_PREFIX}/circuits", self._circuits),
            ("GET", f"{API_PREFIX}/circuits/{{circuit_id}}", self._circuit),
            ("PUT", f"{API_PREFIX}/circuits/{{circuit_id}}/limit", self._put_circuit_limit),
            ("GET", f"{API_PREFIX}/chargers", self._chargers),
            ("GET", f"{API_PREFIX}/chargers/{{charger_id}}", self._charger),
            ("PUT", f"{API_PREFIX}/chargers/{{charger_id}}/limit", self._put_charger_limit),
            (
                "PUT",
                f"{API_PREFIX}/chargers/{{charger_id}}/availability",
                self._put_availability,
            ),
            ("GET", f"{API_PREFIX}/chargers/{{charger_id}}/vehicle-need", self._vehicle_need),
            ("PUT", f"{API_PREFIX}/chargers/{{charger_id}}/vehicle-need", self._put_need),
            ("GET", f"{API_PREFIX}/sessions", self._sessions),
            ("GET", f"{API_PREFIX}/uplinks", self._uplinks),
            ("GET", f"{API_PREFIX}/load-history", self._load_history),
        ]
        if self.has_alarms:
            routes.append(("GET", f"{API_PREFIX}/alarms", self._alarms))
        if "metrics" in self.features:
            routes.append(("GET", "/metrics", self._metrics))
        if "bundle" in self.features:
            routes.append(("GET", f"{API_PREFIX}/diagnostics", self._diagnostics))
            routes.append(("POST", f"{API_PREFIX}/diagnostics", self._diagnostics))
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        return app

    def described_paths(self) -> set[str]:
        """The paths the OpenAPI description of this server names."""
        return set(self.openapi()["paths"])

    def openapi(self) -> JsonObject:
        return openapi_document(
            alarms=self.has_alarms,
            metrics="metrics" in self.features,
            diagnostics="bundle" in self.features,
        )

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return _error(error.status, error.message)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as error:
            if error.status < 400:
                raise
            reason = error.reason
            if error.status == 404:
                reason = f"no such route: {request.path}"
            elif error.status == 405:
                reason = f"method {request.method} not allowed on {request.path}"
            return _error(error.status, reason, headers=_allow_header(error))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception(
                "local API request failed", extra={"method": request.method, "path": request.path}
            )
            return _error(500, "internal error (logged by the gateway)")

    @web.middleware
    async def _authenticate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or not (path.startswith(f"{API_PREFIX}/") or path == "/metrics"):
            return await handler(request)
        try:
            principal = self.credentials.authenticate(request.headers.get("Authorization"))
        except Unauthenticated as error:
            logger.info(
                "local API request refused: %s",
                error,
                extra={"path": path, "remote": request.remote},
            )
            raise ApiError(401, f"unauthorized: {error}") from None
        writing = request.method not in ("GET", "HEAD", "OPTIONS")
        if (writing or path in ADMIN_READS) and not principal.may_write:
            raise ApiError(403, f"forbidden: user {principal.name!r} has the read role")
        request[_PRINCIPAL] = principal
        if writing:
            logger.info(
                "local API write",
                extra={"user": principal.name, "method": request.method, "path": path},
            )
        return await handler(request)

    # --- open routes -----------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC_FILES[request.path]
        body = resources.files("gateway.api").joinpath("static", name).read_bytes()
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers={
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                # Everything the dashboard needs comes from the gateway itself.
                "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            },
        )

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    # --- reads -----------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        principal = request[_PRINCIPAL]
        return web.json_response({"name": principal.name, "role": principal.role})

    async def _site(self, request: web.Request) -> web.Response:
        return web.json_response(site_view(self.gateway))

    def snapshot(self) -> JsonObject:
        """Everything the dashboard shows, in one document (also what the stream pushes)."""
        alarms = self._active_alarms()
        return {
            "site": site_view(self.gateway),
            "circuits": circuits_view(self.gateway),
            "chargers": chargers_view(self.gateway),
            "sessions": live_sessions(self.gateway),
            "uplinks": uplinks_view(self.gateway),
            "alarms": alarms,
            "problems": problems(self.gateway, alarms),
        }

    async def _snapshot_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a `snapshot` at once, then on every site event (settled) and
        at least every `push_interval_s`, until the client goes or the server stops."""
        if self._streams >= self.max_streams:
            raise ApiError(503, f"too many live streams open (at most {self.max_streams})")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        events = self.gateway.site.subscribe()
        self._streams += 1
        try:
            while not self._closing.is_set():
                try:
                    data = json.dumps(self.snapshot(), separators=(",", ":"))
                except Exception:
                    # Headers are sent: the stream cannot become an error page. Skip a beat.
                    logger.exception("could not build a snapshot for the live stream")
                else:
                    await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.push_interval_s):
                        await events.get()
                        await asyncio.sleep(EVENT_SETTLE_S)
                while not events.empty():
                    events.get_nowait()
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away
        finally:
            self._streams -= 1
            self.gateway.site.unsubscribe(events)
        return response

    async def _circuits(self, request: web.Request) -> web.Response:
        return web.json_response(circuits_view(self.gateway))

    def _circuit_view(self, circuit_id: str) -> JsonObject:
        for circuit in circuits_view(self.gateway):
            if circuit["id"] == circuit_id:
                return circuit
        raise ApiError(404, f"unknown circuit {circuit_id!r}")

    async def _circuit(self, request: web.Request) -> web.Response:
        return web.json_response(self._circuit_view(request.match_info["circuit_id"]))

    def _charger_id(self, request: web.Request) -> str:
        charger_id = request.match_info["charger_id"]
        if charger_id not in self.gateway.site.charger_ids:
            raise ApiError(404, f"unknown charger {charger_id!r}")
        return charger_id

    async def _chargers(self, request: web.Request) -> web.Response:
        return web.json_response(chargers_view(self.gateway))

    async def _charger(self, request: web.Request) -> web.Response:
        return web.json_response(charger_view(self.gateway, self._charger_id(request)))

    async def _vehicle_need(self, request: web.Request) -> web.Response:
        return web.json_response(vehicle_need_view(self.gateway, self._charger_id(request)))

    async def _sessions(self, request: web.Request) -> web.Response:
        limit = _query_int(request, "limit", 50, 1, MAX_PAGE)
        offset = _query_int(request, "offset", 0, 0, MAX_OFFSET)
        charger_id = request.query.get("charger_id") or None
        page, total = await self.gateway.store.sessions_page(
            charger_id=charger_id, limit=limit, offset=offset
        )
        live = live_sessions(self.gateway)
        if charger_id is not None:
            live = [session for session in live if session["charger_id"] == charger_id]
        return web.json_response(
            {
                "live": live,
                "history": [session_view(session) for session in page],
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )

    async def _uplinks(self, request: web.Request) -> web.Response:
        return web.json_response(uplinks_view(self.gateway))

    async def _load_history(self, request: web.Request) -> web.Response:
        series = request.query.get("series", "site")
        loop = self.gateway.balancing
        known = {"site", *(() if loop is None else loop.controller.circuits)}
        if series not in known:
            raise ApiError(404, f"unknown series {series!r} (known: {', '.join(sorted(known))})")
        minutes = _query_int(request, "minutes", MAX_HISTORY_MINUTES, 1, MAX_HISTORY_MINUTES)
        since = time.time() - minutes * 60.0
        try:
            samples = self.history.samples(series, since)
        except LookupError:
            samples = []
        return web.json_response(
            {
                "series": series,
                "sample_interval_s": self.history.sample_interval_s,
                "samples": [[round(value, 3) for value in sample] for sample in samples],
            }
        )

    def _active_alarms(self) -> list[JsonObject]:
        monitor = getattr(self.gateway, "alarms", None)
        if monitor is None:
            return []
        try:
            return [jsonable(alarm) for alarm in monitor.active()]
        except Exception:
            logger.exception("could not read the active alarms")
            return []

    async def _alarms(self, request: web.Request) -> web.Response:
        monitor = self.gateway.alarms
        return web.json_response(
            {
                "active": [jsonable(alarm) for alarm in monitor.active()],
                "history": [jsonable(alarm) for alarm in monitor.history()],
            }
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.features["metrics"](self.gateway)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _diagnostics(self, request: web.Request) -> web.Response:
        bundle: bytes = await self.features["bundle"](self.gateway)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return web.Response(
            body=bundle,
            content_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="evgw-diagnostics-{stamp}.tar.gz"'
            },
        )

    # --- writes ----------------------------------------------------------------------------

    def _balancing(self) -> Any:
        if self.gateway.balancing is None:
            raise ApiError(409, "no load balancing configured ([[circuits]] in the config)")
        return self.gateway.balancing

    async def _put_charger_limit(self, request: web.Request) -> web.Response:
        charger_id = self._charger_id(request)
        body = await _body(request, {"max_current_a"})
        amps = body["max_current_a"]
        if amps is not None:
            amps = _number("max_current_a", amps, 0.0, MAX_CURRENT_A)
        loop = self._balancing()
        if charger_id not in loop.controller.chargers:
            raise ApiError(409, f"charger {charger_id!r} is not balanced")
        loop.set_charger_cap(charger_id, API_SOURCE, amps)
        return web.json_response(charger_view(self.gateway, charger_id))

    async def _put_circuit_limit(self, request: web.Request) -> web.Response:
        circuit_id = request.match_info["circuit_id"]
        loop = self._balancing()
        if circuit_id not in loop.controller.circuits:
            raise ApiError(404, f"unknown circuit {circuit_id!r}")
        body = await _body(request, {"max_current_a"})
        value = body["max_current_a"]
        amps: tuple[float, float, float] | None = None
        if isinstance(value, list):
            if len(value) != 3:
                raise ApiError(400, "max_current_a: a list must have 3 items (L1, L2, L3)")
            l1, l2, l3 = (_number("max_current_a", item, 0.0, MAX_CURRENT_A) for item in value)
            amps = (l1, l2, l3)
        elif value is not None:
            one = _number("max_current_a", value, 0.0, MAX_CURRENT_A)
            amps = (one, one, one)
        loop.set_circuit_limit(circuit_id, API_SOURCE, amps)
        return web.json_response(self._circuit_view(circuit_id))

    async def _put_availability(self, request: web.Request) -> web.Response:
        charger_id = self._charger_id(request)
        body = await _body(request, {"availability"})
        value = body["availability"]
        if value not in ("operative", "inoperative"):
            raise ApiError(
                400, f'availability: must be "operative" or "inoperative", got {value!r}'
            )
        self.gateway.site.set_operative(charger_id, value == "operative")
        return web.json_response(charger_view(self.gateway, charger_id))

    async def _put_need(self, request: web.Request) -> web.Response:
        charger_id = self._charger_id(request)
        body = await _body(request, {"energy_kwh", "departure"})
        energy_kwh = _number("energy_kwh", body["energy_kwh"], 0.0, MAX_ENERGY_KWH)
        departure = _datetime("departure", body["departure"])
        ahead = departure - datetime.now(UTC)
        if ahead > MAX_DEPARTURE_AHEAD:
            raise ApiError(
                400, f"departure: more than {MAX_DEPARTURE_AHEAD.days} days ahead: {departure}"
            )
        # A departure already past makes the vehicle as urgent as it gets: leaving now.
        departure_in_s = max(0.0, ahead.total_seconds())
        loop = self._balancing()
        if charger_id not in loop.controller.chargers:
            raise ApiError(409, f"charger {charger_id!r} is not balanced")
        try:
            loop.set_vehicle_need(charger_id, energy_kwh * 1000.0, departure_in_s)
        except LookupError as error:
            raise ApiError(409, str(error)) from None
        return web.json_response(vehicle_need_view(self.gateway, charger_id))


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _allow_header(error: web.HTTPException) -> dict[str, str]:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else {}


async def _body(request: web.Request, keys: set[str]) -> dict[str, Any]:
    """A JSON object with exactly `keys` (each required)."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"body: must be a JSON object with {', '.join(sorted(keys))}")
    unknown = sorted(set(body) - keys)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(keys))})")
    missing = sorted(keys - set(body))
    if missing:
        raise ApiError(400, f"{missing[0]}: missing")
    return body


def _number(name: str, value: Any, low: float, high: float) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ApiError(400, f"{name}: must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _datetime(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: must be an ISO 8601 date-time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name}: not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"{name}: needs a time zone (e.g. Z or +01:00): {value!r}")
    return parsed


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name}: must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}, got {value}")
    return value
