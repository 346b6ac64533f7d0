"""Uploading a diagnostics or log file to the location a central system names (1.6
GetDiagnostics, GetLog of the security whitepaper and of 2.0.1).

Only HTTP(S) is spoken: the file is PUT to the location, with the file name appended when the
location ends in "/" (what `curl -T`, and so libocpp, does). FTP locations, common with 1.6
central systems, fail with a clear reason. Credentials in the location (user:password@) are
used for basic auth and never logged: `shown()` gives the location without them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

logger = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S: Final = 120.0
"""One attempt's whole duration: a bundle of a few MB over a slow uplink (LTE at 1 Mbit/s
moves 5 MB in about 40 s) with room to spare."""
SUPPORTED_SCHEMES: Final = ("http", "https")


class UploadError(Exception):
    """The file could not be delivered (the reason never contains credentials)."""


def shown(location: str) -> str:
    """The location without user information, for logs and answers."""
    parts = urlsplit(location)
    if parts.username is None and parts.password is None:
        return location
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def target_url(location: str, file_name: str) -> str:
    """Where the file is PUT: the location, plus the file name if it ends in "/"."""
    return location + quote(file_name) if location.endswith("/") else location


def location_problem(location: str) -> str | None:
    """Why nothing can be uploaded to `location`, or None."""
    parts = urlsplit(location)
    if parts.scheme not in SUPPORTED_SCHEMES:
        return f"unsupported scheme {parts.scheme or '(none)'!r}: only http and https uploads"
    if not parts.hostname:
        return "the location has no host"
    return None


@dataclass(frozen=True, slots=True)
class UploadRequest:
    location: str
    file_name: str
    retries: int = 0
    """Further attempts after the first (the request's `retries`)."""
    retry_interval_s: float = 60.0
    """Wait between attempts (the request's `retryInterval`; the spec leaves the default to
    the station: one minute)."""


async def upload(
    request: UploadRequest, body: bytes, *, timeout_s: float = UPLOAD_TIMEOUT_S
) -> None:
    """PUT `body` to the request's location, retrying as it asks. Raises `UploadError` after
    the last failed attempt."""
    problem = location_problem(request.location)
    if problem is not None:
        raise UploadError(problem)
    url = target_url(request.location, request.file_name)
    last_error = "no attempt"
    for attempt in range(request.retries + 1):
        if attempt:
            await asyncio.sleep(request.retry_interval_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
                session.put(
                    url, data=body, headers={"Content-Type": "application/octet-stream"}
                ) as response,
            ):
                if response.status < 300:
                    logger.info(
                        "file uploaded",
                        extra={
                            "location": shown(url),
                            "bytes": len(body),
                            "http_status": response.status,
                        },
                    )
                    return
                last_error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # aiohttp's messages may carry the URL; keep only the kind of failure.
            last_error = type(error).__name__
        logger.warning(
            "upload attempt failed",
            extra={"location": shown(url), "attempt": attempt + 1, "reason": last_error},
        )
    raise UploadError(f"upload to {shown(url)} failed: {last_error}")
