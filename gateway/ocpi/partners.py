"""The OCPI partners the gateway talks to, persisted in SQLite (`ocpi_partners`).

Which token is which (credentials.asciidoc; ocpi.md §3 "keep straight which token
authenticates which direction"):
- `token_a`: the CREDENTIALS_TOKEN_A *we issued* to a partner that registers with us; it
  opens only `versions` and `credentials`, and is discarded once the partner registered.
- `token_in`: the token the partner presents to us after registration (the TOKEN_C we
  generated when it registered with us, or the TOKEN_B we sent when we registered with it).
- `token_out`: the token we present to the partner (its TOKEN_B when it registered with us,
  its TOKEN_C when we registered with it; its TOKEN_A while we register).

Tokens are kept in plain text because the spec returns them on `GET credentials`
(ocpi/ocpi #394), and never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from gateway.ocpi import transport
from gateway.store import Store

logger = logging.getLogger("gateway.ocpi.partners")

RELOAD_INTERVAL_S: Final = 5.0
"""At most this often an unknown token makes the registry re-read the store: a token issued
by the command line works within seconds, and a stream of bad tokens costs one read per
interval, not one per request."""

TOKEN_BYTES: Final = 32
"""256 bits of randomness; `token_urlsafe` makes 43 characters of it, inside CiString(64)."""


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class PartyRole(StrEnum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class PartnerStatus(StrEnum):
    PENDING = "PENDING"
    """Configured, not registered yet (a token A is waiting to be used)."""
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"
    """It or we unregistered; nothing is exchanged until a new registration."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    identifier: str
    role: InterfaceRole
    url: str


@dataclass(frozen=True, slots=True)
class Partner:
    """One partner as the registry knows it. Tokens are secrets: never log a Partner."""

    id: str
    status: PartnerStatus
    token_a: str | None = field(default=None, repr=False)
    token_in: str | None = field(default=None, repr=False)
    token_out: str | None = field(default=None, repr=False)
    token_next: str | None = field(default=None, repr=False)
    """While we rotate tokens (our PUT), the new token we sent: accepted beside `token_in`
    until the partner confirms (kept in memory only; a restart mid-rotation keeps the old)."""
    raw_token: bool = False
    """Send our token raw instead of base64 (2.1.1 and many 2.2 peers)."""
    versions_url: str | None = None
    version: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    roles: tuple[dict[str, Any], ...] = ()
    """The CredentialsRole objects of its credentials (role, party_id, country_code,
    business_details)."""
    configured_roles: frozenset[PartyRole] = frozenset()
    """The roles the configuration expects, used until the partner's credentials say."""

    @property
    def party_roles(self) -> frozenset[PartyRole]:
        known = {str(role.get("role")) for role in self.roles}
        from_credentials = frozenset(PartyRole(r) for r in known if r in PartyRole.__members__)
        return from_credentials or self.configured_roles

    def endpoint(self, identifier: str, role: InterfaceRole) -> str | None:
        """The partner's URL for a module and interface role, if it has one."""
        for endpoint in self.endpoints:
            if endpoint.identifier == identifier and endpoint.role is role:
                return endpoint.url
        return None

    def parties(self) -> list[tuple[str, str]]:
        """(country_code, party_id) of each of its roles."""
        return [
            (str(role.get("country_code", "")), str(role.get("party_id", "")))
            for role in self.roles
        ]


@dataclass(frozen=True, slots=True)
class Authenticated:
    partner: Partner
    token_a: bool


def new_token() -> str:
    """A fresh credentials token (TOKEN_A, B or C)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class PartnerRegistry:
    """The partners, in memory for authentication on every request, written through to the
    store on every change. Open with `await PartnerRegistry.open(store)`."""

    def __init__(self, store: Store, partners: Iterable[Partner]) -> None:
        self._store = store
        self._partners: dict[str, Partner] = {p.id: p for p in partners}
        self._reloaded_at = time.monotonic()

    @classmethod
    async def open(cls, store: Store) -> PartnerRegistry:
        return cls(store, await _load(store))

    async def reload(self) -> None:
        """Re-read the partners from the store (a token A issued by `evgw ocpi-token` while
        the gateway runs), keeping the tokens only held in memory."""
        self._reloaded_at = time.monotonic()
        loaded = {partner.id: partner for partner in await _load(self._store)}
        for partner_id, partner in loaded.items():
            current = self._partners.get(partner_id)
            if current is not None:
                loaded[partner_id] = replace(
                    partner,
                    token_next=current.token_next,
                    configured_roles=current.configured_roles,
                )
        self._partners = loaded

    # --- queries ---------------------------------------------------------------------------

    def all(self) -> list[Partner]:
        return list(self._partners.values())

    def get(self, partner_id: str) -> Partner | None:
        return self._partners.get(partner_id)

    def registered(self) -> list[Partner]:
        return [p for p in self._partners.values() if p.status is PartnerStatus.REGISTERED]

    async def authenticate(self, candidates: Sequence[str]) -> Authenticated | None:
        """The partner presenting one of `candidates` (see `transport.token_candidates`):
        its `token_in` once registered, or the token A we issued while pending. Compared in
        constant time per token. An unknown token makes the registry re-read the store, at
        most every `RELOAD_INTERVAL_S`."""
        found = self._match(candidates)
        stale = time.monotonic() - self._reloaded_at >= RELOAD_INTERVAL_S
        if found is None and candidates and stale:
            await self.reload()
            found = self._match(candidates)
        return found

    def _match(self, candidates: Sequence[str]) -> Authenticated | None:
        for candidate in candidates:
            for partner in self._partners.values():
                registered = partner.status is PartnerStatus.REGISTERED
                if _same(partner.token_in, candidate):
                    # Before registration completes, the TOKEN_B we sent while registering
                    # with the partner opens only what token A opens.
                    return Authenticated(partner, token_a=not registered)
                if registered and _same(partner.token_next, candidate):
                    return Authenticated(partner, token_a=False)
                if not registered and _same(partner.token_a, candidate):
                    return Authenticated(partner, token_a=True)
        return None

    # --- changes ---------------------------------------------------------------------------

    async def configure(
        self,
        partner_id: str,
        *,
        token_a: str | None,
        issued_by_us: bool,
        raw_token: bool,
        versions_url: str | None,
        roles: frozenset[PartyRole],
    ) -> Partner:
        """Bring a configured partner into the registry. A partner that never registered
        takes the configured token A: as ours to accept (`issued_by_us`) or as theirs to
        register with (`token_out`). A registered or unregistered partner keeps its tokens."""
        current = self._partners.get(partner_id)
        if current is None:
            current = Partner(partner_id, PartnerStatus.PENDING)
        updated = replace(current, raw_token=raw_token, configured_roles=roles)
        if versions_url is not None:
            updated = replace(updated, versions_url=versions_url)
        if current.status is PartnerStatus.PENDING:
            # Once a partner registered, its token A is spent: after an unregistration only a
            # newly issued one (`issue_token_a`) opens the door again.
            if issued_by_us:
                updated = replace(updated, token_a=token_a)
            else:
                updated = replace(updated, token_out=token_a, token_a=None)
        return await self.save(updated)

    async def issue_token_a(self, partner_id: str) -> str:
        """Issue a new token A for a partner to register with (creating it if needed).
        Returns the token, to hand over out of band."""
        token = new_token()
        current = self._partners.get(partner_id) or Partner(partner_id, PartnerStatus.PENDING)
        await self.save(replace(current, token_a=token, status=PartnerStatus.PENDING))
        return token

    async def save(self, partner: Partner) -> Partner:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO ocpi_partners (id, token_a, token_in, token_out, raw_token,"
                " versions_url, version, endpoints, roles, status, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " token_a = excluded.token_a, token_in = excluded.token_in,"
                " token_out = excluded.token_out, raw_token = excluded.raw_token,"
                " versions_url = excluded.versions_url, version = excluded.version,"
                " endpoints = excluded.endpoints, roles = excluded.roles,"
                " status = excluded.status, updated_at = excluded.updated_at",
                _row(partner),
            )

        await self._store.write(write)
        self._partners[partner.id] = partner
        return partner

    async def registered_with(
        self,
        partner: Partner,
        *,
        token_in: str,
        token_out: str,
        versions_url: str,
        version: str,
        endpoints: Sequence[Endpoint],
        roles: Sequence[dict[str, Any]],
    ) -> Partner:
        """Record a completed registration (either direction): token A is discarded."""
        updated = replace(
            partner,
            status=PartnerStatus.REGISTERED,
            token_a=None,
            token_in=token_in,
            token_next=None,
            token_out=token_out,
            versions_url=versions_url,
            version=version,
            endpoints=tuple(endpoints),
            roles=tuple(roles),
        )
        saved = await self.save(updated)
        logger.info(
            "OCPI partner registered",
            extra={"partner": partner.id, "version": version, "endpoints": len(endpoints)},
        )
        return saved

    async def unregister(self, partner: Partner) -> Partner:
        """Forget the partner's tokens: neither side can call the other until it registers
        again (with a new token A)."""
        updated = replace(
            partner,
            status=PartnerStatus.UNREGISTERED,
            token_in=None,
            token_next=None,
            token_out=None,
            token_a=None,
        )
        saved = await self.save(updated)
        logger.info("OCPI partner unregistered", extra={"partner": partner.id})
        return saved


async def _load(store: Store) -> list[Partner]:
    rows = await store.read(lambda db: list(db.execute("SELECT * FROM ocpi_partners ORDER BY id")))
    return [_from_row(row) for row in rows]


def _same(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def _row(partner: Partner) -> tuple[object, ...]:
    return (
        partner.id,
        partner.token_a,
        partner.token_in,
        partner.token_out,
        int(partner.raw_token),
        partner.versions_url,
        partner.version,
        json.dumps(
            [
                {"identifier": e.identifier, "role": e.role.value, "url": e.url}
                for e in partner.endpoints
            ]
        ),
        json.dumps(list(partner.roles)),
        partner.status.value,
        transport.format_datetime(transport.now()),
    )


def _from_row(row: sqlite3.Row) -> Partner:
    return Partner(
        id=row["id"],
        status=PartnerStatus(row["status"]),
        token_a=row["token_a"],
        token_in=row["token_in"],
        token_out=row["token_out"],
        raw_token=bool(row["raw_token"]),
        versions_url=row["versions_url"],
        version=row["version"],
        endpoints=tuple(
            Endpoint(e["identifier"], InterfaceRole(e["role"]), e["url"])
            for e in json.loads(row["endpoints"])
        ),
        roles=tuple(json.loads(row["roles"])),
    )
