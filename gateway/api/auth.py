"""Who may use the local API: every request under `/api/` and `/metrics` names a configured
user's token, as `Authorization: Bearer <token>` or as HTTP Basic (any user name, the token as
the password; what curl -u and browsers send). No credentials or a wrong token: 401; a
"read" user asking for a write: 403.

Tokens are compared in constant time against every user's (so the timing tells nothing about
which one nearly matched), and neither a token nor the Authorization header is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.config import ApiUser

READ: Final = "read"
ADMIN: Final = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The user a request authenticated as (never its token)."""

    name: str
    role: str

    @property
    def may_write(self) -> bool:
        return self.role == ADMIN


class Unauthenticated(Exception):
    """No usable credentials; the message says what was wrong, without the secret."""


class Credentials:
    """The configured users, looked up by token."""

    def __init__(self, users: Sequence[ApiUser]) -> None:
        if not users:
            raise ValueError("the local API needs at least one user")
        self._users = [(user.token.encode(), Principal(user.name, user.role)) for user in users]

    def authenticate(self, header: str | None) -> Principal:
        """The user an Authorization header names. Raises `Unauthenticated`."""
        if not header:
            raise Unauthenticated("missing Authorization header (Bearer token or Basic)")
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            token = value
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated("malformed Basic credentials") from None
            _, _, token = decoded.partition(":")
        else:
            raise Unauthenticated("unsupported Authorization scheme (use Bearer or Basic)")
        if not token:
            raise Unauthenticated("empty token")
        offered = token.encode()
        found: Principal | None = None
        for secret, principal in self._users:
            # Every user is compared, so the time taken does not depend on which one matched.
            if hmac.compare_digest(offered, secret):
                found = principal
        if found is None:
            raise Unauthenticated("unknown token")
        return found
