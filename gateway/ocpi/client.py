"""The HTTP client the gateway uses to call OCPI partners (aiohttp): the token header (base64,
or raw for partners that want it), X-Request-ID / X-Correlation-ID, routing headers, and the
response envelope read leniently (a missing `data` on PUT/PATCH replies is fine)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from gateway.ocpi import transport
from gateway.ocpi.partners import Partner
from gateway.ocpi.transport import HEADER_CORRELATION_ID, HEADER_REQUEST_ID, Routing

logger = logging.getLogger("gateway.ocpi.client")

DEFAULT_TIMEOUT_S: Final = 10.0
"""A partner that takes longer is treated as unreachable for this request (pushes retry)."""

MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
"""A partner's reply bigger than this is refused rather than held in memory."""


class OcpiClientError(Exception):
    """The partner could not be reached, or did not answer in the OCPI envelope. The message
    never contains a token."""


@dataclass(frozen=True, slots=True)
class OcpiReply:
    http_status: int
    status_code: int | None
    """None when the body had no envelope (allowed for some PUT/PATCH replies)."""
    status_message: str | None
    data: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """HTTP 2xx and an OCPI success code (or none at all)."""
        return 200 <= self.http_status < 300 and (
            self.status_code is None or 1000 <= self.status_code < 2000
        )

    @property
    def retryable(self) -> bool:
        """A failure worth trying again later: a server-side or overload error."""
        return (
            self.http_status >= 500
            or self.http_status in (408, 429)
            or (self.status_code is not None and self.status_code >= 3000)
        )


class OcpiClient:
    """Calls partners. `await close()` when done."""

    def __init__(
        self,
        *,
        country_code: str,
        party_id: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.country_code = country_code
        self.party_id = party_id
        self.timeout_s = timeout_s
        self._session = session

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: Any = None,
        raw_token: bool = False,
        to: tuple[str, str] | None = None,
        correlation_id: str | None = None,
        timeout_s: float | None = None,
        query: Mapping[str, str] | None = None,
    ) -> OcpiReply:
        """One request. `to` = (country_code, party_id) of the receiver adds the routing
        headers (functional modules only). Raises `OcpiClientError` when there is no usable
        HTTP answer."""
        headers = {
            "Authorization": transport.authorization_header(token, raw=raw_token),
            HEADER_REQUEST_ID: transport.new_request_id(),
            HEADER_CORRELATION_ID: correlation_id or transport.new_request_id(),
        }
        if to is not None:
            headers.update(Routing(self.country_code, self.party_id, to[0], to[1]).headers())
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                async with self._http().request(
                    method, url, data=data, headers=headers, params=query
                ) as response:
                    text = await response.content.read(MAX_REPLY_BYTES + 1)
                    if len(text) > MAX_REPLY_BYTES:
                        raise OcpiClientError(
                            f"{method} {url}: reply larger than {MAX_REPLY_BYTES} bytes"
                        )
                    reply_headers = {k: v for k, v in response.headers.items()}
                    status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            raise OcpiClientError(f"{method} {url}: {type(error).__name__}: {error}") from None
        return _reply(method, url, status, text, reply_headers)

    async def call_partner(
        self,
        partner: Partner,
        method: str,
        url: str,
        *,
        body: Any = None,
        routed: bool = True,
        correlation_id: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> OcpiReply:
        """A request to a registered partner with its token and (for functional modules,
        `routed`) routing headers to its first role's party."""
        if partner.token_out is None:
            raise OcpiClientError(f"partner {partner.id}: no token to call it with")
        parties = partner.parties()
        return await self.call(
            method,
            url,
            partner.token_out,
            body=body,
            raw_token=partner.raw_token,
            to=parties[0] if routed and parties else None,
            correlation_id=correlation_id,
            query=query,
        )


def _reply(method: str, url: str, status: int, text: bytes, headers: dict[str, str]) -> OcpiReply:
    if not text.strip():
        return OcpiReply(status, None, None, None, headers)
    try:
        body = json.loads(text)
    except ValueError:
        if status >= 400:
            return OcpiReply(status, None, None, None, headers)
        raise OcpiClientError(
            f"{method} {url}: HTTP {status} with a body that is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise OcpiClientError(f"{method} {url}: HTTP {status} without the OCPI envelope")
    code = body.get("status_code")
    message = body.get("status_message")
    return OcpiReply(
        status,
        code if isinstance(code, int) else None,
        message if isinstance(message, str) else None,
        body.get("data"),
        headers,
    )
