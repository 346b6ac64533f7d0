"""Fixtures for the MQTT tests: real Mosquitto brokers on ephemeral ports, a controllable
clock for the simulators' physics, and a polling helper for "eventually"."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.mqtt.broker import LocalBroker, base_config, free_port

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

USERNAME = "gateway"
PASSWORD = "s3cret-Pa55word-never-logged"

EVENTUALLY_S = 15.0
"""Generous bound for "eventually": polling, never a timing assertion."""

T = TypeVar("T")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    """An anonymous broker on loopback."""
    instance = LocalBroker.anonymous(tmp_path)
    await instance.start()
    yield instance
    await instance.stop()


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_file: Path
    """A CA that signed nothing here: verifying the broker against it must fail."""


def _make_pki(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def write_key(path: Path, private_key: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def ca(common_name: str, path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        ca_key = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(common_name))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, ca_key

    def leaf(
        common_name: str,
        issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
        cert_path: Path,
        key_path: Path,
        *,
        server: bool,
    ) -> None:
        leaf_key = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(issuer[0].subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
                        if server
                        else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
                    ]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(issuer[1], hashes.SHA256())
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, leaf_key)

    pki = Pki(
        ca_file=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca_file=directory / "other-ca.pem",
    )
    root = ca("evgw test CA", pki.ca_file)
    ca("unrelated CA", pki.other_ca_file)
    leaf("localhost", root, pki.server_cert, pki.server_key, server=True)
    leaf("gateway-client", root, pki.client_cert, pki.client_key, server=False)
    return pki


@dataclass
class SecureBroker:
    broker: LocalBroker
    pki: Pki
    plain_port: int
    tls_port: int
    mtls_port: int


@pytest.fixture
async def secure_broker(tmp_path: Path) -> AsyncIterator[SecureBroker]:
    """A broker without anonymous access: a plain listener with a password file, a TLS
    listener (test CA, server certificate for 127.0.0.1/localhost) and a TLS listener that
    also requires a client certificate. Files made with `mosquitto_passwd -b` and the
    `cryptography` package."""
    pki = _make_pki(tmp_path)
    password_file = tmp_path / "passwords"
    made = await asyncio.create_subprocess_exec(
        MOSQUITTO_PASSWD, "-c", "-b", str(password_file), USERNAME, PASSWORD
    )
    assert await made.wait() == 0, "mosquitto_passwd failed"
    plain_port, tls_port, mtls_port = free_port(), free_port(), free_port()
    tls = f"cafile {pki.ca_file}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
    config = (
        base_config(tmp_path / "mosquitto.log")
        + f"allow_anonymous false\npassword_file {password_file}\n"
        + f"listener {plain_port} 127.0.0.1\n"
        + f"listener {tls_port} 127.0.0.1\n{tls}"
        + f"listener {mtls_port} 127.0.0.1\n{tls}require_certificate true\n"
    )
    instance = LocalBroker(tmp_path, config, [plain_port, tls_port, mtls_port])
    await instance.start()
    yield SecureBroker(instance, pki, plain_port, tls_port, mtls_port)
    await instance.stop()


class ManualClock:
    """A clock that moves only when told, so the simulators' physics is deterministic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout_s: float = EVENTUALLY_S, what: str = ""
) -> T:
    """Poll `probe` until it returns without raising AssertionError (or the exceptions a
    probe uses to say "not yet"); return its value. Fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await probe()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout_s} s: {what} ({exc!r})") from exc
        await asyncio.sleep(0.05)
