"""OCPI 2.2.1 transport and format: the response envelope, status codes, the `Authorization:
Token` header (base64, raw tolerated), request/correlation ids, routing headers, timestamps
and pagination.

Facts from the spec's `transport_and_format` and `status_codes` chapters (ocpi.md §2):
- invalid JSON gets HTTP 400; a request that reached the OCPI layer gets no HTTP error
  (200/201) and an OCPI `status_code` in the envelope; a GET of a missing object gets 404;
- a missing or unknown token gets 401;
- lists are paginated with `offset`/`limit`/`date_from` (inclusive)/`date_to` (exclusive) on
  `last_updated`, oldest first, with `Link: <...>; rel="next"`, `X-Total-Count`, `X-Limit`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

VERSION: Final = "2.2.1"

HEADER_REQUEST_ID: Final = "X-Request-ID"
HEADER_CORRELATION_ID: Final = "X-Correlation-ID"
HEADER_TOTAL_COUNT: Final = "X-Total-Count"
HEADER_LIMIT: Final = "X-Limit"
HEADER_FROM_COUNTRY: Final = "OCPI-from-country-code"
HEADER_FROM_PARTY: Final = "OCPI-from-party-id"
HEADER_TO_COUNTRY: Final = "OCPI-to-country-code"
HEADER_TO_PARTY: Final = "OCPI-to-party-id"

MAX_TOKEN_LENGTH: Final = 64
"""CiString(64): the credentials token (credentials.asciidoc)."""

DEFAULT_PAGE_LIMIT: Final = 100
MAX_PAGE_LIMIT: Final = 1000
"""What we serve per page at most, whatever `limit` asks (the spec lets the server cap it
and report the cap in X-Limit)."""
MAX_OFFSET: Final = 2**31 - 1
"""Larger offsets are refused (2001): no list has that many objects, and SQLite integers
(what modules page with) end at 2**63 - 1."""


class OcpiStatus(IntEnum):
    """OCPI status codes (status_codes.asciidoc)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    MISSING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003


class OcpiError(Exception):
    """Raised by a module handler to answer with an OCPI error: `status_code` in the
    envelope, `http_status` on the wire (200 by default: the request reached the OCPI
    layer; 404 for a GET of a missing object, 405 for a method not allowed in this state)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        http_status: int = 200,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status
        self.data = data


def invalid(message: str) -> OcpiError:
    """A 2001 error ("invalid or missing parameters"), HTTP 200."""
    return OcpiError(OcpiStatus.INVALID_PARAMETERS, message)


def not_found(message: str, status_code: int = OcpiStatus.CLIENT_ERROR) -> OcpiError:
    """A GET of an object that does not exist: HTTP 404."""
    return OcpiError(status_code, message, http_status=404)


# --- time ----------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` and whole seconds, as OCPI DateTime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """An OCPI DateTime; one without a zone designator is UTC (transport_and_format).
    Raises ValueError."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a DateTime: {text!r}")
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # E.g. 0001-01-01T00:00:00+01:00: before the first representable UTC instant.
        raise ValueError(f"DateTime out of range: {text!r}") from None


def now() -> datetime:
    return datetime.now(UTC)


# --- envelope ------------------------------------------------------------------------------


def envelope(
    data: Any = None,
    status_code: int = OcpiStatus.SUCCESS,
    status_message: str | None = None,
    *,
    include_data: bool = True,
) -> dict[str, Any]:
    """The OCPI response object. `include_data=False` leaves `data` out (PUT/PATCH replies
    and errors)."""
    body: dict[str, Any] = {}
    if include_data and data is not None:
        body["data"] = data
    body["status_code"] = int(status_code)
    if status_message:
        body["status_message"] = status_message
    body["timestamp"] = format_datetime(now())
    return body


# --- tokens --------------------------------------------------------------------------------


def authorization_header(token: str, *, raw: bool = False) -> str:
    """The `Authorization` header value for `token`: base64 per 2.2.1, or the raw token for
    partners that expect it (2.1.1 and many 2.2 peers; ocpi.md §2)."""
    if raw:
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode("ascii")).decode("ascii")


def token_candidates(header: str | None) -> list[str]:
    """The tokens an `Authorization` header may carry: the base64-decoded form first (when it
    decodes to printable ASCII), then the raw form. Empty when the header is missing or not
    `Token <credential>`."""
    if not header:
        return []
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "token" or not credential or len(credential) > 4 * MAX_TOKEN_LENGTH:
        return []
    candidates: list[str] = []
    try:
        decoded = base64.b64decode(credential, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded and decoded.isprintable() and not any(c.isspace() for c in decoded):
        candidates.append(decoded)
    candidates.append(credential)
    return candidates


def is_valid_token(token: object) -> bool:
    """A credentials token: 1-64 printable, non-whitespace ASCII characters."""
    return (
        isinstance(token, str)
        and 0 < len(token) <= MAX_TOKEN_LENGTH
        and token.isascii()
        and token.isprintable()
        and not any(c.isspace() for c in token)
    )


# --- request ids and routing ----------------------------------------------------------------


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing headers of a request (absent = None)."""

    from_country_code: str | None = None
    from_party_id: str | None = None
    to_country_code: str | None = None
    to_party_id: str | None = None

    @staticmethod
    def from_headers(headers: Mapping[str, str]) -> Routing:
        return Routing(
            headers.get(HEADER_FROM_COUNTRY),
            headers.get(HEADER_FROM_PARTY),
            headers.get(HEADER_TO_COUNTRY),
            headers.get(HEADER_TO_PARTY),
        )

    def headers(self) -> dict[str, str]:
        pairs = (
            (HEADER_FROM_COUNTRY, self.from_country_code),
            (HEADER_FROM_PARTY, self.from_party_id),
            (HEADER_TO_COUNTRY, self.to_country_code),
            (HEADER_TO_PARTY, self.to_party_id),
        )
        return {name: value for name, value in pairs if value}

    def reply(self) -> Routing:
        """The routing headers of the response: from and to swapped."""
        return Routing(
            self.to_country_code, self.to_party_id, self.from_country_code, self.from_party_id
        )


# --- pagination ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageParams:
    """A list GET's filters: `date_from` inclusive, `date_to` exclusive, on last_updated."""

    offset: int = 0
    limit: int = DEFAULT_PAGE_LIMIT
    date_from: datetime | None = None
    date_to: datetime | None = None

    @staticmethod
    def parse(
        query: Mapping[str, str],
        *,
        max_limit: int = MAX_PAGE_LIMIT,
        require_date_from: bool = False,
    ) -> PageParams:
        """From the query string; raises `OcpiError` 2001 naming the bad parameter."""
        offset = _int_param(query, "offset", 0)
        limit = min(_int_param(query, "limit", min(DEFAULT_PAGE_LIMIT, max_limit)), max_limit)
        if not 0 <= offset <= MAX_OFFSET:
            raise invalid(f"offset: must be between 0 and {MAX_OFFSET}, got {offset}")
        if limit < 0:
            raise invalid(f"limit: must be 0 or more, got {limit}")
        date_from = _date_param(query, "date_from")
        date_to = _date_param(query, "date_to")
        if require_date_from and date_from is None:
            raise invalid("date_from: required")
        return PageParams(offset, limit, date_from, date_to)

    def matches(self, last_updated: datetime) -> bool:
        if self.date_from is not None and last_updated < self.date_from:
            return False
        return self.date_to is None or last_updated < self.date_to


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise invalid(f"{name}: must be an integer, got {text!r}") from None


def _date_param(query: Mapping[str, str], name: str) -> datetime | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        raise invalid(f"{name}: must be an RFC 3339 DateTime, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list GET: the objects on it and how many match the filters in all.
    The server adds the `Link`, `X-Total-Count` and `X-Limit` headers."""

    items: Sequence[Any]
    total: int
    limit: int


T = TypeVar("T")


def paginate(
    objects: Sequence[T],
    params: PageParams,
    last_updated: Callable[[T], datetime],
    serialize: Callable[[T], Any],
) -> Page:
    """An in-memory list paginated: filtered on `last_updated`, oldest first (ties keep
    their order), sliced by offset/limit, each object serialized."""
    matching = sorted(
        (item for item in objects if params.matches(last_updated(item))), key=last_updated
    )
    window = matching[params.offset : params.offset + params.limit]
    return Page([serialize(item) for item in window], len(matching), params.limit)


def next_link(base_url: str, query: Mapping[str, str], page: Page, offset: int) -> str | None:
    """The `Link` header to the next page, keeping the other filters; None on the last."""
    following = offset + len(page.items)
    if following >= page.total or not page.items:
        return None
    params = {key: value for key, value in query.items() if key not in ("offset", "limit")}
    params["offset"] = str(following)
    params["limit"] = str(page.limit)
    return f'<{base_url}?{urlencode(params)}>; rel="next"'
