"""Local authorization for an OCPP 1.6 charge point, free of I/O (1.6 §3.5, ocpp.md §9).

- **Authorization cache.** Every idTagInfo the central system answered (Authorize,
  StartTransaction, StopTransaction), valid or not, except for identifiers on the local list.
  Entries expire in place (an Accepted entry past its expiryDate counts as Expired). When full,
  invalid entries go first, then the oldest learned.
- **Local Authorization List.** Changed only by SendLocalList (Full or Differential, with a
  version); it outranks the cache.
- **Decision** (`decide`): online, an identifier is asked about (Authorize.req), unless
  LocalPreAuthorize lets a valid list or cache entry start at once. Offline,
  LocalAuthorizeOffline lets valid entries start; an identifier known as invalid (non-Accepted
  or expired, in the list or the cache) is refused; an unknown one starts only with
  AllowOfflineTxForUnknownId.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Final

from gateway.store import StoredIdTag

DEFAULT_CACHE_CAPACITY: Final = 1000
"""Entries per charge point. OCPP names no size; a site's regular users fit many times over,
and the whole cache is a few hundred kilobytes in memory and on disk."""


class AuthorizationStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class UpdateStatus(StrEnum):
    """SendLocalList.conf status."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


class Decision(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    ASK = "ask the central system"


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> IdTagInfo:
        expiry = payload.get("expiryDate")
        return cls(
            status=str(payload["status"]),
            expiry_date=parse_timestamp(expiry) if expiry else None,
            parent_id_tag=payload.get("parentIdTag"),
        )

    @classmethod
    def from_id_token_info(cls, payload: dict[str, Any]) -> IdTagInfo:
        """From an OCPP 2.0.1 idTokenInfo: its status (2.0.1 adds Unknown, NoCredit, ... which
        all count as not Accepted), cacheExpiryDateTime as the expiry and the groupIdToken as
        the parent."""
        expiry = payload.get("cacheExpiryDateTime")
        group = payload.get("groupIdToken")
        return cls(
            status=str(payload["status"]),
            expiry_date=parse_timestamp(expiry) if expiry else None,
            parent_id_tag=str(group["idToken"]) if isinstance(group, dict) else None,
        )

    def effective_status(self, now: datetime) -> str:
        """The status now: an Accepted entry past its expiry date is Expired."""
        if (
            self.status == AuthorizationStatus.ACCEPTED
            and self.expiry_date is not None
            and self.expiry_date <= now
        ):
            return AuthorizationStatus.EXPIRED.value
        return self.status

    def valid(self, now: datetime) -> bool:
        return self.effective_status(now) == AuthorizationStatus.ACCEPTED

    def stored(self, id_tag: str, updated_at: datetime | None = None) -> StoredIdTag:
        return StoredIdTag(
            id_tag=id_tag,
            status=self.status,
            expiry_date=self.expiry_date.isoformat() if self.expiry_date else None,
            parent_id_tag=self.parent_id_tag,
            updated_at=updated_at.isoformat() if updated_at else None,
        )

    @classmethod
    def from_stored(cls, entry: StoredIdTag) -> IdTagInfo:
        return cls(
            status=entry.status,
            expiry_date=parse_timestamp(entry.expiry_date) if entry.expiry_date else None,
            parent_id_tag=entry.parent_id_tag,
        )


def parse_timestamp(text: str) -> datetime:
    """An OCPP dateTime (RFC 3339; a missing offset is taken as UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _CacheEntry:
    info: IdTagInfo
    learned_at: datetime


class AuthorizationCache:
    """The cache's contents and eviction; the caller persists the changes it reports."""

    def __init__(self, capacity: int = DEFAULT_CACHE_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._entries: dict[str, _CacheEntry] = {}

    def load(self, entries: Iterable[StoredIdTag]) -> None:
        for entry in entries:
            learned = parse_timestamp(entry.updated_at) if entry.updated_at else datetime.now(UTC)
            self._entries[entry.id_tag] = _CacheEntry(IdTagInfo.from_stored(entry), learned)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, id_tag: str) -> IdTagInfo | None:
        entry = self._entries.get(id_tag)
        return entry.info if entry is not None else None

    def learn(self, id_tag: str, info: IdTagInfo, now: datetime) -> list[str]:
        """Remember an answer; returns the identifiers evicted to make room."""
        self._entries.pop(id_tag, None)
        evicted: list[str] = []
        while len(self._entries) >= self.capacity:
            victim = self._eviction_candidate(now)
            del self._entries[victim]
            evicted.append(victim)
        self._entries[id_tag] = _CacheEntry(info, now)
        return evicted

    def remove(self, id_tags: Iterable[str]) -> list[str]:
        """Forget identifiers; returns those that were cached."""
        return [id_tag for id_tag in id_tags if self._entries.pop(id_tag, None) is not None]

    def clear(self) -> None:
        self._entries.clear()

    def _eviction_candidate(self, now: datetime) -> str:
        # Invalid (including expired) first, then the oldest learned.
        return min(
            self._entries,
            key=lambda id_tag: (
                self._entries[id_tag].info.valid(now),
                self._entries[id_tag].learned_at,
            ),
        )


@dataclass(frozen=True, slots=True)
class ListUpdate:
    """The outcome of a SendLocalList: the status to answer and, when Accepted, the new list."""

    status: UpdateStatus
    version: int = 0
    entries: dict[str, IdTagInfo] | None = None


class LocalList:
    """The Local Authorization List of one charge point."""

    def __init__(self) -> None:
        self.version = 0
        self.entries: dict[str, IdTagInfo] = {}

    def load(self, version: int, entries: Iterable[StoredIdTag]) -> None:
        self.version = version
        self.entries = {entry.id_tag: IdTagInfo.from_stored(entry) for entry in entries}

    def get(self, id_tag: str) -> IdTagInfo | None:
        return self.entries.get(id_tag)

    @property
    def reported_version(self) -> int:
        """GetLocalListVersion: 0 for an empty list (1.6 §6.29)."""
        return self.version if self.entries else 0

    def plan(
        self,
        update_type: str,
        version: int,
        items: list[dict[str, Any]],
        *,
        max_length: int,
        send_max_length: int,
    ) -> ListUpdate:
        """Check a SendLocalList request against the list; `apply` the result if Accepted.

        Full replaces the list (every item needs an idTagInfo). Differential needs a version
        newer than the current one (else VersionMismatch); an item with an idTagInfo is
        added or replaced, one without is removed. More items than SendLocalListMaxLength, or
        a resulting list longer than LocalAuthListMaxLength, fail."""
        if len(items) > send_max_length:
            return ListUpdate(UpdateStatus.FAILED)
        try:
            parsed = [
                (
                    str(item["idTag"]),
                    IdTagInfo.from_json(item["idTagInfo"]) if "idTagInfo" in item else None,
                )
                for item in items
            ]
        except (KeyError, ValueError, TypeError):
            return ListUpdate(UpdateStatus.FAILED)
        if update_type == "Full":
            if any(info is None for _, info in parsed):
                return ListUpdate(UpdateStatus.FAILED)
            entries = {id_tag: info for id_tag, info in parsed if info is not None}
        elif update_type == "Differential":
            if version <= self.version:
                return ListUpdate(UpdateStatus.VERSION_MISMATCH)
            entries = dict(self.entries)
            for id_tag, info in parsed:
                if info is None:
                    entries.pop(id_tag, None)
                else:
                    entries[id_tag] = info
        else:
            return ListUpdate(UpdateStatus.FAILED)
        if len(entries) > max_length:
            return ListUpdate(UpdateStatus.FAILED)
        return ListUpdate(UpdateStatus.ACCEPTED, version, entries)

    def apply(self, update: ListUpdate) -> None:
        assert update.status is UpdateStatus.ACCEPTED
        assert update.entries is not None
        self.version = update.version
        self.entries = update.entries


@dataclass(frozen=True, slots=True)
class AuthorizationKeys:
    """The configuration keys the decision depends on. OCPP 2.0.1 names them as device-model
    variables: LocalAuthListCtrlr.Enabled, AuthCacheCtrlr.Enabled,
    AuthCtrlr.LocalAuthorizeOffline, AuthCtrlr.LocalPreAuthorize and
    AuthCtrlr.OfflineTxForUnknownIdEnabled."""

    local_auth_list_enabled: bool
    authorization_cache_enabled: bool
    local_authorize_offline: bool
    local_pre_authorize: bool
    allow_offline_tx_for_unknown_id: bool


def known_info(
    id_tag: str, keys: AuthorizationKeys, local_list: LocalList, cache: AuthorizationCache
) -> IdTagInfo | None:
    """What the charge point knows about an identifier: the list first, then the cache."""
    if keys.local_auth_list_enabled:
        listed = local_list.get(id_tag)
        if listed is not None:
            return listed
    if keys.authorization_cache_enabled:
        return cache.get(id_tag)
    return None


def decide(
    id_tag: str,
    *,
    online: bool,
    now: datetime,
    keys: AuthorizationKeys,
    local_list: LocalList,
    cache: AuthorizationCache,
) -> Decision:
    """Whether to start for `id_tag` from local knowledge, or to ask the central system."""
    info = known_info(id_tag, keys, local_list, cache)
    if online:
        if info is not None and info.valid(now) and keys.local_pre_authorize:
            return Decision.ACCEPT
        # Invalid cached entries are re-checked while online (ocpp.md §9).
        return Decision.ASK
    if info is not None:
        if not info.valid(now):
            return Decision.REJECT
        if keys.local_authorize_offline:
            return Decision.ACCEPT
    return Decision.ACCEPT if keys.allow_offline_tx_for_unknown_id else Decision.REJECT
