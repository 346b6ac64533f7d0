"""`evgw status`: a live summary of a running gateway, read through its local API
(`GET /api/v1/snapshot`).

Exit codes, for scripts:

- 0: the gateway answers and reports no problem;
- 1: it answers and reports a problem: an active alarm, a charger unreachable, faulted or
  out of service, an uplink not connected and accepted (each printed as `problem: ...`);
- 2: usage: no token, a malformed URL, or the token refused (401/403);
- 3: the gateway cannot be reached (nothing listening, timeout, not an evgw API).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import aiohttp

EXIT_OK: Final = 0
EXIT_PROBLEM: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
DEFAULT_URL: Final = "http://127.0.0.1:8080"
"""The `[api]` section's default address."""
TOKEN_ENV: Final = "EVGW_API_TOKEN"
URL_ENV: Final = "EVGW_API_URL"
TIMEOUT_S: Final = 10.0
"""A gateway that has not answered in this long counts as unreachable."""


class StatusError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def fetch_snapshot(url: str, token: str, *, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """The gateway's snapshot. Raises `StatusError` with the exit code and why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StatusError(EXIT_USAGE, f"--url must be an http:// or https:// URL, got {url!r}")
    endpoint = url.rstrip("/") + "/api/v1/snapshot"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(endpoint, headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            if response.status in (401, 403):
                raise StatusError(EXIT_USAGE, f"the gateway refused the token ({response.status})")
            if response.status != 200:
                raise StatusError(
                    EXIT_UNREACHABLE, f"{endpoint} answered {response.status}: not an evgw API?"
                )
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise StatusError(
            EXIT_UNREACHABLE, f"cannot reach the gateway at {url}: {error or type(error).__name__}"
        ) from None
    except ValueError:
        raise StatusError(EXIT_UNREACHABLE, f"{endpoint} did not answer JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("problems"), list):
        raise StatusError(EXIT_UNREACHABLE, f"{endpoint} did not answer an evgw snapshot")
    return body


def _amps(values: list[float] | None) -> str:
    return "-" if values is None else "/".join(f"{value:.1f}" for value in values)


def summary(snapshot: dict[str, Any]) -> str:
    """The human-readable summary `evgw status` prints."""
    site = snapshot.get("site", {})
    statuses = ", ".join(f"{name} {count}" for name, count in site.get("statuses", {}).items())
    lines = [
        f"evgw {site.get('version', '?')}: {site.get('chargers', 0)} chargers ({statuses}),"
        f" {site.get('power_w', 0.0) / 1000:.1f} kW, site {_amps(site.get('current_a'))} A"
        + (f" of {_amps(site.get('limit_a'))} A" if site.get("limit_a") else "")
    ]
    for charger in snapshot.get("chargers", []):
        allocated = charger.get("allocated_a")
        reason = (charger.get("balancing") or {}).get("reason", "")
        state = charger.get("status") if charger.get("online") else "Offline"
        lines.append(
            f"  {charger.get('id', '?'):<16} {state or '-':<14}"
            f" {'-' if allocated is None else f'{allocated:.1f}'} A allocated,"
            f" {_amps(charger.get('current_a'))} A" + (f"  ({reason})" if reason else "")
        )
    uplinks = snapshot.get("uplinks", [])
    if uplinks:
        up = sum(1 for uplink in uplinks if uplink.get("connected") and uplink.get("accepted"))
        queued = sum(uplink.get("queue_depth") or 0 for uplink in uplinks)
        lines.append(f"uplinks: {up}/{len(uplinks)} connected, {queued} messages queued")
    lines.append(f"sessions: {len(snapshot.get('sessions', []))} live")
    problems = snapshot.get("problems", [])
    lines.extend(f"problem: {problem}" for problem in problems)
    if not problems:
        lines.append("no problems")
    return "\n".join(lines)


def run_status(
    url: str | None, token: str | None, *, as_json: bool, out: TextIO = sys.stdout
) -> int:
    """`evgw status`: print the summary (or the snapshot as JSON); returns the exit code."""
    token = token or os.environ.get(TOKEN_ENV)
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    if not token:
        print(f"evgw status: no token: give --token or set {TOKEN_ENV}", file=sys.stderr)
        return EXIT_USAGE
    try:
        snapshot = asyncio.run(fetch_snapshot(url, token))
    except StatusError as error:
        print(f"evgw status: {error}", file=sys.stderr)
        return error.code
    if as_json:
        print(json.dumps(snapshot, indent=2), file=out)
    else:
        print(summary(snapshot), file=out)
    return EXIT_PROBLEM if snapshot["problems"] else EXIT_OK
