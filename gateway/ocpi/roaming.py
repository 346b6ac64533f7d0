"""The roaming side of the CPO assembled once per OCPI context: the session book, the CDRs,
the tokens and their authorization, the commands and the charging profiles, and how they
reach partners (pushes to the owning eMSP, real-time authorization at the token's eMSP).

The sessions, CDRs, tokens, commands and chargingprofiles modules are built from the same
`Roaming` (`roaming(context)`), kept in `OcpiContext.shared`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from gateway.ocpi.cdrs import CdrBook
from gateway.ocpi.charging_profiles import ChargingProfiles
from gateway.ocpi.client import OcpiClientError
from gateway.ocpi.commands import Commands
from gateway.ocpi.locations import evse_uid
from gateway.ocpi.partners import InterfaceRole, Partner, PartnerRegistry, PartyRole
from gateway.ocpi.sessions import (
    MeterSample,
    Priced,
    SessionBook,
    SessionRecord,
    metering_samples,
)
from gateway.ocpi.tokens import RealTimeAnswer, TokenAuthorization, TokenRegistry
from gateway.ocpi.transport import OcpiStatus

if TYPE_CHECKING:
    from gateway.ocpi.client import OcpiClient
    from gateway.ocpi.pushes import Pushes
    from gateway.ocpi.server import OcpiContext
    from gateway.tariffs.model import Tariff

logger = logging.getLogger(__name__)

SHARED_KEY: Final = "roaming"
REAL_TIME_TIMEOUT_S: Final = 5.0
"""A driver waits at the charger for the answer (mod_tokens §12.1.3: keep it minimal)."""


def find_partner(partners: PartnerRegistry, owner: tuple[str, str]) -> Partner | None:
    """The registered partner that has `owner` (country_code, party_id) among its roles, or
    else a registered hub (which routes to it)."""
    registered = partners.registered()
    for partner in registered:
        if owner in partner.parties():
            return partner
    for partner in registered:
        if PartyRole.HUB in partner.party_roles:
            return partner
    return None


class PartnerPublisher:
    """Session PUTs and CDR POSTs to the owning eMSP through its push queue."""

    def __init__(self, partners: PartnerRegistry, pushes: Pushes, party: tuple[str, str]) -> None:
        self._partners = partners
        self._pushes = pushes
        self._party = party

    def publish_session(self, owner: tuple[str, str], session: dict[str, Any]) -> None:
        partner = find_partner(self._partners, owner)
        url = partner.endpoint("sessions", InterfaceRole.RECEIVER) if partner else None
        if partner is None or url is None:
            return
        target = f"{url.rstrip('/')}/{self._party[0]}/{self._party[1]}/{session['id']}"
        self._pushes.send(partner.id, "PUT", target, session, key=f"session:{session['id']}")

    def publish_cdr(self, owner: tuple[str, str], cdr: dict[str, Any]) -> None:
        partner = find_partner(self._partners, owner)
        url = partner.endpoint("cdrs", InterfaceRole.RECEIVER) if partner else None
        if partner is None or url is None:
            return
        self._pushes.send(partner.id, "POST", url, cdr)


class PartnerRealTime:
    """Real-time authorization at a token's eMSP (its tokens SENDER endpoint)."""

    def __init__(self, partners: PartnerRegistry, client: OcpiClient) -> None:
        self._partners = partners
        self._client = client

    async def authorize_token(
        self, token: Mapping[str, Any], location: Mapping[str, Any] | None
    ) -> RealTimeAnswer:
        owner = (str(token.get("country_code")), str(token.get("party_id")))
        partner = find_partner(self._partners, owner)
        url = partner.endpoint("tokens", InterfaceRole.SENDER) if partner else None
        if partner is None or url is None:
            return RealTimeAnswer(reachable=False)
        target = f"{url.rstrip('/')}/{quote(str(token['uid']), safe='')}/authorize"
        try:
            async with asyncio.timeout(REAL_TIME_TIMEOUT_S):
                reply = await self._client.call_partner(
                    partner,
                    "POST",
                    target,
                    body=dict(location) if location is not None else None,
                    query={"type": str(token.get("type", "RFID"))},
                )
        except (OcpiClientError, TimeoutError) as error:
            logger.warning("real-time authorization unreachable: %s", error)
            return RealTimeAnswer(reachable=False)
        if reply.http_status == 404 or reply.status_code == OcpiStatus.UNKNOWN_TOKEN:
            return RealTimeAnswer(reachable=True, info=None)
        if reply.ok and isinstance(reply.data, dict):
            return RealTimeAnswer(reachable=True, info=dict(reply.data))
        if reply.retryable:
            return RealTimeAnswer(reachable=False)
        return RealTimeAnswer(reachable=True, info=None)


@dataclass(frozen=True, slots=True)
class SitePlaces:
    """Our one Location and its EVSEs: one EVSE per charger, with the uid the locations
    module publishes (`gateway.ocpi.locations.evse_uid`)."""

    location_id: str
    chargers: tuple[str, ...]
    location: Mapping[str, Any]
    """CdrLocation fields shared by every EVSE (address, city, country, coordinates...)."""
    per_charger: Mapping[str, Mapping[str, Any]]
    """Per charger: evse_id, connector_standard, connector_format, connector_power_type."""

    def evse_uid(self, charger_id: str) -> str:
        return evse_uid(charger_id)

    def charger_of(self, evse_uid_: str) -> str | None:
        return next((c for c in self.chargers if evse_uid(c) == evse_uid_), None)

    def evse_uids(self) -> list[str]:
        return [evse_uid(c) for c in self.chargers]

    def cdr_location(self, charger_id: str) -> dict[str, Any]:
        return {
            **self.location,
            "evse_uid": self.evse_uid(charger_id),
            "connector_id": "1",
            **self.per_charger.get(charger_id, {}),
        }


def site_places(context: OcpiContext) -> SitePlaces:
    section = context.ocpi
    location = section.location
    shared: dict[str, Any] = {
        "id": location.id,
        "address": location.address,
        "city": location.city,
        "country": location.country,
        "coordinates": {
            "latitude": f"{location.latitude:.6f}",
            "longitude": f"{location.longitude:.6f}",
        },
    }
    if location.name:
        shared["name"] = location.name
    if location.postal_code:
        shared["postal_code"] = location.postal_code
    per_charger: dict[str, dict[str, Any]] = {}
    for charger in context.config.chargers:
        extra = section.charger(charger.id)
        per_charger[charger.id] = {
            "evse_id": extra.evse_id or evse_uid(charger.id),
            "connector_standard": extra.standard,
            "connector_format": extra.format,
            "connector_power_type": "AC_3_PHASE" if charger.phases == 3 else "AC_1_PHASE",
        }
    return SitePlaces(
        location.id, tuple(c.id for c in context.config.chargers), shared, per_charger
    )


class TariffPricing:
    """Prices sessions with the tariff engine: the charger's tariff for the session's start
    (`gateway.tariffs.catalog.select_tariff`, REGULAR: RFID and remote starts), its periods
    cut wherever that tariff's price may change (`gateway.tariffs.metering`), priced by
    `gateway.tariffs.pricing.price_session` in the site's time zone."""

    def __init__(self, tariffs_of: Mapping[str, Sequence[Tariff]], time_zone: tzinfo) -> None:
        self._tariffs_of = tariffs_of
        self._time_zone = time_zone

    def price(self, record: SessionRecord, points: Sequence[MeterSample]) -> Priced | None:
        from gateway.tariffs.catalog import select_tariff
        from gateway.tariffs.metering import build_charging_periods
        from gateway.tariffs.pricing import price_session

        session = record.session
        tariff = select_tariff(self._tariffs_of.get(session.charger_id, ()), session.started_at)
        if tariff is None:
            return None
        periods = build_charging_periods(
            metering_samples(points),
            time_zone=self._time_zone,
            tariff=tariff,
            session_start=session.started_at,
        )
        if not periods:
            return None
        costs = price_session(tariff, periods, time_zone=self._time_zone).to_ocpi()
        currency = str(costs.pop("currency"))
        for volume in ("total_energy", "total_time", "total_parking_time"):
            costs.pop(volume, None)  # the CDR reports the volumes from the same periods
        return Priced([period.to_ocpi() for period in periods], currency, costs, [tariff.to_ocpi()])


class Roaming:
    """Everything the roaming modules share; see the module docstring."""

    def __init__(self, context: OcpiContext) -> None:
        section = context.ocpi
        party = (section.country_code, section.party_id)
        self.context = context
        self.places = site_places(context)
        self.publisher = PartnerPublisher(context.partners, context.pushes, party)
        self.sessions = SessionBook(
            context.store,
            context.site,
            party=party,
            places=self.places,
            time_zone=ZoneInfo(section.location.time_zone),
            pricing=_pricing(context),
            publisher=self.publisher,
        )
        self.cdrs = CdrBook(context.store, self.sessions, self.places, publisher=self.publisher)
        self.tokens = TokenRegistry(context.store)
        self.authorization = TokenAuthorization(
            self.tokens,
            self.places,
            PartnerRealTime(context.partners, context.client),
            self.sessions.grant,
        )
        self.commands = Commands(
            context.site,
            self.sessions,
            self.places,
            token_commanded=self.authorization.commanded,
        )
        self.profiles = ChargingProfiles(
            context.store, context.site, self.sessions, context.balancing
        )

    def send_to(self, partner: Partner) -> Any:
        """A ResultSender posting to `partner` at an absolute URL (command and profile
        results)."""

        def send(url: str, result: dict[str, Any]) -> None:
            self.context.pushes.send(partner.id, "POST", url, result)

        return send

    async def run(self) -> None:
        """Follow the site (sessions, CDRs, profiles) and authorize swipes with OCPI tokens,
        until cancelled."""
        self.context.site.set_pre_authorizer(self.authorization)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.sessions.run(), name="ocpi-sessions")
                await self.sessions.wait_ready()
                made = await self.cdrs.catch_up()
                if made:
                    logger.info(
                        "CDRs built for sessions that ended unrecorded", extra={"cdrs": made}
                    )
                tasks.create_task(self.profiles.run(), name="ocpi-charging-profiles")
                tasks.create_task(self.commands.run(), name="ocpi-reservations")
        finally:
            self.context.site.set_pre_authorizer(None)
            await self.commands.close()


def roaming(context: OcpiContext) -> Roaming:
    """The context's `Roaming`, created on first use."""
    found = context.shared.get(SHARED_KEY)
    if isinstance(found, Roaming):
        return found
    created = Roaming(context)
    context.shared[SHARED_KEY] = created
    return created


def _pricing(context: OcpiContext) -> TariffPricing | None:
    """The tariff engine over the configured tariffs (`[[tariffs]]`), when there are any."""
    tariffs = context.config.tariffs
    if not tariffs:
        return None
    by_id = {tariff.id: tariff for tariff in tariffs}
    tariffs_of = {
        charger.id: [by_id[t] for t in context.ocpi.charger(charger.id).tariff_ids if t in by_id]
        for charger in context.config.chargers
    }
    return TariffPricing(tariffs_of, ZoneInfo(context.ocpi.location.time_zone))


def owners_of(
    partner: Partner, routing_from: tuple[str | None, str | None]
) -> list[tuple[str, str]]:
    """The parties whose sessions, CDRs and tokens a caller may see and touch: its own
    roles, and for a hub also the party named in the request's OCPI-from headers."""
    owners = partner.parties()
    country_code, party_id = routing_from
    if PartyRole.HUB in partner.party_roles and country_code and party_id:
        owners.append((country_code, party_id))
    return owners


EMSP_SIDE: Final = frozenset({PartyRole.EMSP, PartyRole.HUB})
"""Who may call the roaming modules: eMSPs, and hubs on their behalf."""
