"""Test peers for the security profiles and the maintenance messages: certificates made on
the spot with `cryptography` (a CA, a server certificate for 127.0.0.1/localhost, a client
certificate, and a second CA nobody trusts), and central systems on the `ocpp` package that
serve over TLS, check HTTP basic auth, require client certificates, and answer the
maintenance and security messages the stations send."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from ocpp.v201 import call_result as call_result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.ocpp.central_system_ocpp import (
    OcppPackageCsms,
    RecordingChargePoint,
    RecordingConnection,
    handles,
)
from tests.ocpp.central_system_ocpp201 import Csms201, RecordingStation

# --- certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files of one test run."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    rogue_server_cert: Path
    """A server certificate for 127.0.0.1 signed by `other_ca`: must be refused."""
    rogue_server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evgw test CPO"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    """A fresh CA with a server and a client certificate, and a second CA with a server
    certificate for the same address."""
    ca = _ca("evgw test root")
    other = _ca("somebody else's root")
    server = _leaf("127.0.0.1", ca, server=True)
    client = _leaf("CP-SEC", ca, server=False)
    rogue = _leaf("127.0.0.1", other, server=True)
    paths = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
        rogue_server_cert=directory / "rogue.pem",
        rogue_server_key=directory / "rogue.key",
    )
    _write_cert(paths.ca, ca[0])
    _write_cert(paths.other_ca, other[0])
    for cert_path, key_path, (cert, key) in (
        (paths.server_cert, paths.server_key, server),
        (paths.client_cert, paths.client_key, client),
        (paths.rogue_server_cert, paths.rogue_server_key, rogue),
    ):
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
    return paths


def server_context(cert: Path, key: Path, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """The central system's TLS: its certificate, and with `client_ca` a required client
    certificate from that CA (profile 3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


# --- central systems ----------------------------------------------------------------------


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization")
    if value is None or not value.startswith("Basic "):
        return None
    with contextlib.suppress(ValueError):
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password
    return None


@dataclass
class _Gatekeeper:
    """TLS and basic-auth settings of a test central system."""

    ssl_context: ssl.SSLContext | None = None
    passwords: dict[str, str] | None = None
    """identity → the password it must present; None: no basic auth required."""
    refused: list[tuple[str, int]] = field(default_factory=list)
    """(identity, HTTP status) of every refused handshake."""
    authenticated: list[tuple[str, str]] = field(default_factory=list)
    """(identity, password) of every accepted handshake with basic auth."""
    client_certificates: list[str] = field(default_factory=list)
    """The common name of every client certificate presented."""

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        identity = unquote(request.path.rsplit("/", 1)[-1])
        ssl_object = connection.transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            peer = ssl_object.getpeercert()
            if peer:
                subject = dict(item[0] for item in peer["subject"])
                self.client_certificates.append(str(subject.get("commonName")))
        if self.passwords is None:
            return None
        credentials = _basic_credentials(request.headers)
        if credentials is None or credentials[0] != identity:
            self.refused.append((identity, HTTPStatus.UNAUTHORIZED))
            return connection.respond(HTTPStatus.UNAUTHORIZED, "basic auth required\n")
        if self.passwords.get(identity) != credentials[1]:
            self.refused.append((identity, HTTPStatus.UNAUTHORIZED))
            return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong password\n")
        self.authenticated.append(credentials)
        return None


class MaintenanceChargePoint(RecordingChargePoint):
    """The 1.6 test central system's side of a charge point, answering the maintenance and
    security-whitepaper messages too."""

    @handles(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()

    @handles(Action.log_status_notification)
    def on_log_status(self, **payload: Any) -> Any:
        self._record("LogStatusNotification", **payload)
        return call_result.LogStatusNotification()

    @handles(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, **payload: Any) -> Any:
        self._record("DiagnosticsStatusNotification", **payload)
        return call_result.DiagnosticsStatusNotification()

    @handles(Action.firmware_status_notification)
    def on_firmware_status(self, **payload: Any) -> Any:
        self._record("FirmwareStatusNotification", **payload)
        return call_result.FirmwareStatusNotification()


@dataclass
class SecureCsms16(OcppPackageCsms):
    """`OcppPackageCsms` with TLS, basic auth and the maintenance messages."""

    gate: _Gatekeeper = field(default_factory=_Gatekeeper)

    @property
    def url(self) -> str:
        assert self._port, "start() first"
        scheme = "wss" if self.gate.ssl_context is not None else "ws"
        return f"{scheme}://127.0.0.1:{self._port}/ocpp"

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self._port,
            subprotocols=[Subprotocol("ocpp1.6")],
            ssl=self.gate.ssl_context,
            process_request=self.gate.check,
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = unquote(websocket.request.path.rsplit("/", 1)[-1])
        frames = self.raw_frames.setdefault(identity, [])
        charge_point = MaintenanceChargePoint(
            identity, RecordingConnection(websocket, frames), self
        )
        self.charge_points[identity] = charge_point
        with contextlib.suppress(Exception):  # the connection closed
            await charge_point.start()


class MaintenanceStation(RecordingStation):
    """The 2.0.1 test CSMS's side of a station, answering the maintenance and security
    messages too."""

    @handles(Action201.security_event_notification)
    def on_security_event(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", **payload)
        return call_result201.SecurityEventNotification()

    @handles(Action201.log_status_notification)
    def on_log_status(self, **payload: Any) -> Any:
        self._record("LogStatusNotification", **payload)
        return call_result201.LogStatusNotification()

    @handles(Action201.notify_report)
    def on_notify_report(self, **payload: Any) -> Any:
        self._record("NotifyReport", **payload)
        return call_result201.NotifyReport()

    @handles(Action201.meter_values)
    def on_meter_values(self, **payload: Any) -> Any:
        self._record("MeterValues", **payload)
        return call_result201.MeterValues()

    @handles(Action201.firmware_status_notification)
    def on_firmware_status(self, **payload: Any) -> Any:
        self._record("FirmwareStatusNotification", **payload)
        return call_result201.FirmwareStatusNotification()


@dataclass
class SecureCsms201(Csms201):
    """`Csms201` with TLS, basic auth and the maintenance messages."""

    gate: _Gatekeeper = field(default_factory=_Gatekeeper)

    @property
    def url(self) -> str:
        assert self._port, "start() first"
        scheme = "wss" if self.gate.ssl_context is not None else "ws"
        return f"{scheme}://127.0.0.1:{self._port}/ocpp"

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self._port,
            subprotocols=[Subprotocol("ocpp2.0.1")],
            ssl=self.gate.ssl_context,
            process_request=self.gate.check,
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = unquote(websocket.request.path.rsplit("/", 1)[-1])
        frames = self.raw_frames.setdefault(identity, [])
        station = MaintenanceStation(identity, RecordingConnection(websocket, frames), self)
        self.stations[identity] = station
        with contextlib.suppress(Exception):  # the connection closed
            await station.start()


__all__ = [
    "Pki",
    "SecureCsms16",
    "SecureCsms201",
    "make_pki",
    "server_context",
]
