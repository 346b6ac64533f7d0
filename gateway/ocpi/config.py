"""The `[ocpi]` table of the gateway configuration (checked by `gateway.config.parse_config`,
which calls `parse_ocpi`)::

    [ocpi]
    host = "0.0.0.0"                          # where the OCPI server listens
    port = 8090
    public_url = "https://cpo.example.com"    # the base of every URL we hand out
                                              # (default http://<host>:<port>)
    country_code = "NL"                       # ISO 3166-1 alpha-2
    party_id = "EVG"                          # 3 characters (ISO 15118 operator id)
    business_name = "Example Depot Ltd"
    business_website = "https://example.com"  # optional

    [ocpi.location]                           # the site, published as one Location
    id = "DEPOT-1"
    name = "Example depot"                    # optional
    address = "Harbour road 1"
    city = "Rotterdam"
    postal_code = "3011AA"                    # optional
    country = "NLD"                           # ISO 3166-1 alpha-3
    latitude = 51.9                           # degrees
    longitude = 4.48
    time_zone = "Europe/Amsterdam"            # IANA
    publish = true

    [ocpi.chargers.CP-1]                      # optional, per configured charger id
    evse_id = "NL*EVG*E1"                     # eMI3 EVSE id (optional)
    standard = "IEC_62196_T2"                 # ConnectorType
    format = "SOCKET"                         # SOCKET | CABLE
    max_voltage = 400                         # default 400 (three-phase) or 230
    capabilities = ["RFID_READER", "CREDIT_CARD_PAYABLE"]   # the hardware's (default
                                              # RFID_READER); REMOTE_START_STOP_CAPABLE and
                                              # RESERVABLE are always added
    tariff_ids = ["AC-STANDARD"]
    physical_reference = "1"
    floor_level = "0"

    [[ocpi.partners]]
    name = "emsp-a"                           # our id for the partner (logs, CLI)
    roles = ["EMSP"]                          # EMSP, HUB, NSP, SCSP, NAP, OTHER
    token_a_env = "EVGW_OCPI_EMSP_A"          # or token_a / token_a_file; see below
    versions_url = "https://emsp.example/ocpi/versions"   # optional
    raw_token = false                         # send our token raw, not base64

Without `versions_url`, `token_a` is the CREDENTIALS_TOKEN_A *we* issued to the partner (it
registers with us). With `versions_url`, it is the token A the *partner* gave us, and the
gateway registers with it (`evgw ocpi register` or at start-up).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from gateway.config import _Checker

DEFAULT_OCPI_PORT: Final = 8090
PARTY_ROLES: Final = ("EMSP", "HUB", "NSP", "SCSP", "NAP", "OTHER", "CPO")
CONNECTOR_STANDARDS: Final = (
    "IEC_62196_T2",
    "IEC_62196_T2_COMBO",
    "IEC_62196_T1",
    "IEC_62196_T1_COMBO",
    "IEC_62196_T3A",
    "IEC_62196_T3C",
    "DOMESTIC_F",
    "CHADEMO",
    "TESLA_S",
)
"""The ConnectorType values (mod_locations) that fit an AC wallbox or a DC depot charger."""
CAPABILITIES: Final = (
    "CHARGING_PROFILE_CAPABLE",
    "CHARGING_PREFERENCES_CAPABLE",
    "CHIP_CARD_SUPPORT",
    "CONTACTLESS_CARD_SUPPORT",
    "CREDIT_CARD_PAYABLE",
    "DEBIT_CARD_PAYABLE",
    "PED_TERMINAL",
    "REMOTE_START_STOP_CAPABLE",
    "RESERVABLE",
    "RFID_READER",
    "START_SESSION_CONNECTOR_REQUIRED",
    "TOKEN_GROUP_CAPABLE",
    "UNLOCK_CAPABLE",
)
"""Capability (mod_locations)."""
_EVSE_ID: Final = re.compile(r"^[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9*]{1,30}$")
"""eMI3 EVSE id: country, operator, `E`, power outlet id (separators optional)."""


@dataclass(frozen=True, slots=True)
class OcpiPartnerSection:
    name: str
    roles: tuple[str, ...]
    token_a: str | None = field(default=None, repr=False)
    versions_url: str | None = None
    raw_token: bool = False


@dataclass(frozen=True, slots=True)
class OcpiChargerSection:
    evse_id: str | None = None
    standard: str = "IEC_62196_T2"
    format: str = "SOCKET"
    max_voltage: int | None = None
    """None: 400 V for a three-phase charger (line to line), 230 V for a single-phase one."""
    capabilities: tuple[str, ...] = ("RFID_READER",)
    """The hardware's capabilities; REMOTE_START_STOP_CAPABLE and RESERVABLE are added for
    every charger (the gateway provides them)."""
    tariff_ids: tuple[str, ...] = ()
    physical_reference: str | None = None
    floor_level: str | None = None


@dataclass(frozen=True, slots=True)
class OcpiLocationSection:
    id: str
    address: str
    city: str
    country: str
    latitude: float
    longitude: float
    time_zone: str
    name: str | None = None
    postal_code: str | None = None
    publish: bool = True


@dataclass(frozen=True, slots=True)
class OcpiSection:
    country_code: str
    party_id: str
    business_name: str
    location: OcpiLocationSection
    host: str = "127.0.0.1"
    port: int = DEFAULT_OCPI_PORT
    public_url: str = ""
    """Without a trailing slash; never empty after parsing."""
    business_website: str | None = None
    chargers: Mapping[str, OcpiChargerSection] = field(default_factory=dict)
    partners: tuple[OcpiPartnerSection, ...] = ()

    def charger(self, charger_id: str) -> OcpiChargerSection:
        return self.chargers.get(charger_id) or OcpiChargerSection()


_TOP_KEYS = frozenset(
    {
        "host",
        "port",
        "public_url",
        "country_code",
        "party_id",
        "business_name",
        "business_website",
        "location",
        "chargers",
        "partners",
    }
)
_LOCATION_KEYS = frozenset(OcpiLocationSection.__dataclass_fields__)
_CHARGER_KEYS = frozenset(OcpiChargerSection.__dataclass_fields__)
_PARTNER_KEYS = frozenset(
    {"name", "roles", "token_a", "token_a_env", "token_a_file", "versions_url", "raw_token"}
)


def parse_ocpi(checker: _Checker, raw: Any, charger_ids: set[str]) -> OcpiSection | None:
    """The `[ocpi]` table, or None when absent. Problems go to `checker`, naming the key."""
    from gateway.config import _secret

    if raw is None:
        return None
    table = checker.table("ocpi", raw)
    checker.only_keys("ocpi", table, _TOP_KEYS)
    host = checker.text("ocpi.host", table.get("host", "127.0.0.1"))
    port = checker.integer("ocpi.port", table.get("port", DEFAULT_OCPI_PORT), 0, 65535)
    country_code = checker.text("ocpi.country_code", table.get("country_code"))
    if country_code and not re.fullmatch(r"[A-Z]{2}", country_code):
        checker.problems.append(
            f"ocpi.country_code: must be 2 upper-case letters (ISO 3166-1 alpha-2),"
            f" got {country_code!r}"
        )
    party_id = checker.text("ocpi.party_id", table.get("party_id"))
    if party_id and not re.fullmatch(r"[A-Z0-9]{3}", party_id):
        checker.problems.append(
            f"ocpi.party_id: must be 3 upper-case letters or digits, got {party_id!r}"
        )
    public_url = table.get("public_url", f"http://{host}:{port}")
    public_url = checker.text("ocpi.public_url", public_url)
    if public_url and urlsplit(public_url).scheme not in ("http", "https"):
        checker.problems.append(f"ocpi.public_url: must be an http(s) URL, got {public_url!r}")
    website = table.get("business_website")
    if website is not None:
        website = checker.text("ocpi.business_website", website)

    location = _parse_location(checker, table.get("location"))
    chargers: dict[str, OcpiChargerSection] = {}
    raw_chargers = checker.table("ocpi.chargers", table.get("chargers", {}))
    for charger_id, raw_charger in raw_chargers.items():
        where = f"ocpi.chargers.{charger_id}"
        if charger_id not in charger_ids:
            checker.problems.append(f"{where}: no [[chargers]] entry has id {charger_id!r}")
        chargers[charger_id] = _parse_charger(checker, where, raw_charger)

    _check_evse_ids(checker, chargers, country_code, party_id)

    partners: list[OcpiPartnerSection] = []
    raw_partners = table.get("partners", [])
    if not isinstance(raw_partners, list):
        checker.problems.append("ocpi.partners: must be an array of tables [[ocpi.partners]]")
        raw_partners = []
    names: set[str] = set()
    for index, raw_partner in enumerate(raw_partners):
        where = f"ocpi.partners[{index}]"
        partner_table = checker.table(where, raw_partner)
        checker.only_keys(where, partner_table, _PARTNER_KEYS)
        name = checker.text(f"{where}.name", partner_table.get("name"))
        if name in names:
            checker.problems.append(f"{where}.name: duplicate partner name {name!r}")
        names.add(name)
        roles_value = partner_table.get("roles", ["EMSP"])
        roles: list[str] = []
        if not isinstance(roles_value, list) or not roles_value:
            checker.problems.append(f"{where}.roles: must be a non-empty list of roles")
        else:
            roles = [checker.choice(f"{where}.roles", role, PARTY_ROLES) for role in roles_value]
        token = _secret(checker, where, "token_a", partner_table)
        if token is not None and not (
            0 < len(token) <= 64 and token.isascii() and token.isprintable() and " " not in token
        ):
            checker.problems.append(
                f"{where}.token_a: must be 1-64 printable ASCII characters without spaces"
            )
        versions_url = partner_table.get("versions_url")
        if versions_url is not None:
            versions_url = checker.text(f"{where}.versions_url", versions_url)
            if versions_url and urlsplit(versions_url).scheme not in ("http", "https"):
                checker.problems.append(
                    f"{where}.versions_url: must be an http(s) URL, got {versions_url!r}"
                )
            if token is None:
                checker.problems.append(
                    f"{where}.token_a: required with versions_url (the partner's token A)"
                )
        raw_token = partner_table.get("raw_token", False)
        partners.append(
            OcpiPartnerSection(
                name=name,
                roles=tuple(roles),
                token_a=token,
                versions_url=versions_url,
                raw_token=checker.boolean(f"{where}.raw_token", raw_token),
            )
        )
    return OcpiSection(
        country_code=country_code,
        party_id=party_id,
        business_name=checker.text("ocpi.business_name", table.get("business_name")),
        business_website=website,
        location=location,
        host=host,
        port=port,
        public_url=public_url.rstrip("/"),
        chargers=chargers,
        partners=tuple(partners),
    )


def _check_evse_ids(
    checker: _Checker, chargers: Mapping[str, OcpiChargerSection], country_code: str, party_id: str
) -> None:
    """EVSE ids are unique and carry our own operator id (eMI3: country code and party id,
    then `E`), so an eMSP can tell whose EVSE it is."""
    seen: dict[str, str] = {}
    for charger_id, charger in chargers.items():
        evse_id = charger.evse_id
        if not evse_id or not _EVSE_ID.fullmatch(evse_id):
            continue
        where = f"ocpi.chargers.{charger_id}.evse_id"
        compact = evse_id.replace("*", "")
        if country_code and party_id and not compact.startswith(f"{country_code}{party_id}E"):
            checker.problems.append(
                f"{where}: must start with our operator id {country_code}*{party_id}*E,"
                f" got {evse_id!r}"
            )
        if compact in seen:
            checker.problems.append(
                f"{where}: {evse_id!r} is also the evse_id of charger {seen[compact]!r}"
            )
        seen[compact] = charger_id


def _parse_location(checker: _Checker, raw: Any) -> OcpiLocationSection:
    table = checker.table("ocpi.location", raw, required=True)
    checker.only_keys("ocpi.location", table, _LOCATION_KEYS)

    def text(key: str, max_length: int) -> str:
        value = checker.text(f"ocpi.location.{key}", table.get(key))
        if len(value) > max_length:
            checker.problems.append(
                f"ocpi.location.{key}: must be at most {max_length} characters, got {len(value)}"
            )
        return value

    country = text("country", 3)
    if country and not re.fullmatch(r"[A-Z]{3}", country):
        checker.problems.append(
            f"ocpi.location.country: must be 3 upper-case letters (ISO 3166-1 alpha-3),"
            f" got {country!r}"
        )
    time_zone = text("time_zone", 255)
    if time_zone:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            checker.problems.append(
                f"ocpi.location.time_zone: not an IANA time zone, got {time_zone!r}"
            )
    location_id = text("id", 36)
    return OcpiLocationSection(
        id=location_id,
        address=text("address", 45),
        city=text("city", 45),
        country=country,
        latitude=checker.number("ocpi.location.latitude", table.get("latitude"), -90.0, 90.0),
        longitude=checker.number("ocpi.location.longitude", table.get("longitude"), -180.0, 180.0),
        time_zone=time_zone,
        name=checker.optional_text("ocpi.location.name", table.get("name"), 255),
        postal_code=checker.optional_text(
            "ocpi.location.postal_code", table.get("postal_code"), 10
        ),
        publish=checker.boolean("ocpi.location.publish", table.get("publish", True)),
    )


def _parse_charger(checker: _Checker, where: str, raw: Any) -> OcpiChargerSection:
    table = checker.table(where, raw)
    checker.only_keys(where, table, _CHARGER_KEYS)
    defaults = OcpiChargerSection()
    evse_id = table.get("evse_id")
    if evse_id is not None:
        evse_id = checker.text(f"{where}.evse_id", evse_id)
        if evse_id and not _EVSE_ID.fullmatch(evse_id):
            checker.problems.append(
                f"{where}.evse_id: must be an eMI3 EVSE id like NL*EVG*E1, got {evse_id!r}"
            )
    capabilities = table.get("capabilities", list(defaults.capabilities))
    if not isinstance(capabilities, list):
        checker.problems.append(f"{where}.capabilities: must be a list")
        capabilities = []
    tariff_ids = table.get("tariff_ids", [])
    if not isinstance(tariff_ids, list) or not all(
        isinstance(t, str) and 0 < len(t) <= 36 for t in tariff_ids
    ):
        checker.problems.append(f"{where}.tariff_ids: must be a list of ids (1-36 characters)")
        tariff_ids = []
    return OcpiChargerSection(
        evse_id=evse_id,
        standard=checker.choice(
            f"{where}.standard", table.get("standard", defaults.standard), CONNECTOR_STANDARDS
        ),
        format=checker.choice(
            f"{where}.format", table.get("format", "SOCKET"), ("SOCKET", "CABLE")
        ),
        max_voltage=None
        if table.get("max_voltage") is None
        else checker.integer(f"{where}.max_voltage", table.get("max_voltage"), 1, 1500),
        capabilities=tuple(
            checker.choice(f"{where}.capabilities", c, CAPABILITIES) for c in capabilities
        ),
        tariff_ids=tuple(tariff_ids),
        physical_reference=checker.optional_text(
            f"{where}.physical_reference", table.get("physical_reference"), 16
        ),
        floor_level=checker.optional_text(f"{where}.floor_level", table.get("floor_level"), 4),
    )
