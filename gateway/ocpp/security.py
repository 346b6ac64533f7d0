"""OCPP security profiles on the upstream socket (1.6 security whitepaper ed. 2, 2.0.1 Part 2
§A; ocpp.md §4): what each profile sends and checks, the basic-auth password rules, and the
security events a gateway-hosted station can observe.

| profile | the station proves itself by | the central system by | URL |
|---|---|---|---|
| 0 (libocpp) | nothing | its certificate, with wss:// | ws:// or wss:// |
| 1 | HTTP Basic (identity:password) | nothing (VPN only) | ws:// only |
| 2 | HTTP Basic | its server certificate | wss:// only |
| 3 | its client certificate | its server certificate | wss:// only |

The basic-auth username is the station identity (the charger's id); the password is the
station's own (1.6 `AuthorizationKey`, 2.0.1 `SecurityCtrlr.BasicAuthPassword`), write-only
over OCPP and never logged. Server certificates are checked against `ca_file` (default: the
system's CAs) including the host name; TLS below 1.2 is refused (ocpp.md §4).
"""

from __future__ import annotations

import base64
import re
import ssl
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit


class SecurityProfile(IntEnum):
    UNSECURED = 0
    BASIC_AUTH = 1
    TLS_BASIC_AUTH = 2
    TLS_CLIENT_CERTIFICATE = 3

    @property
    def uses_password(self) -> bool:
        return self in (SecurityProfile.BASIC_AUTH, SecurityProfile.TLS_BASIC_AUTH)

    @property
    def needs_tls(self) -> bool:
        return self >= SecurityProfile.TLS_BASIC_AUTH


AUTHORIZATION_KEY_HEX_LENGTHS: Final = range(32, 41)
"""1.6 AuthorizationKey: 16-20 bytes, set as at most 40 hexadecimal characters (security
whitepaper ed. 2, ocpp.md §4): 32 to 40 hex digits, an even number of them. The hex text
itself is the basic-auth password, as libocpp sends it (unverified against a CSMS that
expects the decoded bytes)."""
BASIC_AUTH_PASSWORD_LENGTHS: Final = range(16, 41)
"""2.0.1 SecurityCtrlr.BasicAuthPassword: 16-40 characters (ocpp.md §4)."""
_PASSWORD_STRING: Final = re.compile(r"[A-Za-z0-9*\-_=:+|@.]+")
"""2.0.1 passwordString: the characters of identifierString (Part 2 §2.1.x primitive
datatypes), sent as plain UTF-8."""
_HEX: Final = re.compile(r"[0-9A-Fa-f]+")


def authorization_key_problem(key: str) -> str | None:
    """Why `key` cannot be a 1.6 AuthorizationKey, or None. Never quotes the key."""
    if not _HEX.fullmatch(key):
        return "must be hexadecimal"
    if len(key) not in AUTHORIZATION_KEY_HEX_LENGTHS or len(key) % 2:
        return "must be 32 to 40 hexadecimal characters (16 to 20 bytes)"
    return None


def basic_auth_password_problem(password: str) -> str | None:
    """Why `password` cannot be a 2.0.1 BasicAuthPassword, or None. Never quotes it."""
    if len(password) not in BASIC_AUTH_PASSWORD_LENGTHS:
        return "must be 16 to 40 characters"
    if not _PASSWORD_STRING.fullmatch(password):
        return "may contain only a-z, A-Z, 0-9 and *-_=:+|@."
    return None


def password_problem(ocpp_version: str, password: str) -> str | None:
    """The password rule of the station's OCPP version."""
    if ocpp_version == "1.6":
        return authorization_key_problem(password)
    return basic_auth_password_problem(password)


def basic_authorization(identity: str, password: str) -> str:
    """The Authorization header value: Basic base64(identity ":" password)."""
    token = base64.b64encode(f"{identity}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass(frozen=True, slots=True)
class UpstreamSecurity:
    """One station's upstream security settings (from `[upstream]`, per-charger overrides
    applied). `password` is the configured one; a password the central system set later
    (stored) takes its place."""

    profile: SecurityProfile = SecurityProfile.UNSECURED
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def problems(self, url: str, ocpp_version: str) -> list[str]:
        """What is wrong with these settings for a station at `url` (key-less texts; the
        configuration check prefixes the key)."""
        found: list[str] = []
        scheme = urlsplit(url).scheme
        if self.profile is SecurityProfile.BASIC_AUTH and scheme != "ws":
            found.append("security_profile 1 is basic auth over plain ws://; use 2 for wss://")
        if self.profile.needs_tls and scheme != "wss":
            found.append(f"security_profile {int(self.profile)} needs a wss:// URL")
        if self.profile.uses_password:
            if self.password is None:
                found.append(f"security_profile {int(self.profile)} needs a password")
            else:
                problem = password_problem(ocpp_version, self.password)
                if problem is not None:
                    found.append(f"password {problem} (OCPP {ocpp_version})")
        if self.profile is SecurityProfile.TLS_CLIENT_CERTIFICATE and (
            self.cert_file is None or self.key_file is None
        ):
            found.append("security_profile 3 needs cert_file and key_file")
        return found

    def ssl_context(self, url: str) -> ssl.SSLContext | None:
        """The TLS client context for `url` (None for ws://): server certificate and host
        name checked against `ca_file` or the system CAs, TLS 1.2 or newer, and the client
        certificate with profile 3. Raises OSError (ssl.SSLError among them) for files that do
        not load, ValueError for profile 3 without its files."""
        if urlsplit(url).scheme != "wss":
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.profile is SecurityProfile.TLS_CLIENT_CERTIFICATE:
            if self.cert_file is None or self.key_file is None:
                raise ValueError("security profile 3 needs a client certificate and its key")
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


class SecurityEvent(StrEnum):
    """The security events (whitepaper / 2.0.1 Appendix "Security events") the gateway
    really observes for a station. Names differ per version where the spec's do."""

    STARTUP_OF_THE_DEVICE = "StartupOfTheDevice"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"
    INVALID_SERVER_CERTIFICATE = "InvalidServerCertificate"
    FAILED_TO_AUTHENTICATE = "FailedToAuthenticate"

    def wire_name(self, ocpp_version: str) -> str:
        """The event's `type` on the wire for the version."""
        names = _WIRE_NAMES_16 if ocpp_version == "1.6" else _WIRE_NAMES_201
        return names.get(self, self.value)


_WIRE_NAMES_16: Final = {
    SecurityEvent.INVALID_SERVER_CERTIFICATE: "InvalidCentralSystemCertificate",
    SecurityEvent.FAILED_TO_AUTHENTICATE: "FailedToAuthenticateAtCentralSystem",
}
_WIRE_NAMES_201: Final = {
    SecurityEvent.INVALID_SERVER_CERTIFICATE: "InvalidCsmsCertificate",
    SecurityEvent.FAILED_TO_AUTHENTICATE: "FailedToAuthenticateAtCsms",
}
