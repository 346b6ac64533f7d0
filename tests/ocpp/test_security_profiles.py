"""OCPP security profiles 1-3 end to end: the gateway as `evgw run` wires it, against central
systems on the `ocpp` package that check basic auth, serve TLS with certificates this test
generates, and require client certificates; a server certificate from another CA is refused,
a wrong password is retried with back-off, a password the central system sets is used on the
next connection (and after a restart), and no password ever reaches a log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v201 import call as call201

from gateway.config import (
    ChargerSection,
    ConfigError,
    GatewayConfig,
    GatewaySection,
    UpstreamSection,
    load_config,
)
from gateway.modbus import SimulatedCharger
from gateway.ocpp.security import (
    SecurityEvent,
    authorization_key_problem,
    basic_auth_password_problem,
)
from gateway.ocpp.station import StationCore
from gateway.runtime import Gateway
from gateway.store import Store
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, Received
from tests.ocpp.secure_csms import Pki, SecureCsms16, SecureCsms201, make_pki, server_context

CHARGER_ID = "CP-SEC"
KEY16 = "0123456789abcdef0123456789abcdef01234567"
"""A 1.6 AuthorizationKey: 40 hex digits (20 bytes)."""
NEW_KEY16 = "fedcba9876543210fedcba9876543210"
PASSWORD201 = "evgw-Test.password:1"
NEW_PASSWORD201 = "Another|password@2026"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    return make_pki(directory)


@contextlib.asynccontextmanager
async def serving(csms: SecureCsms16 | SecureCsms201) -> AsyncIterator[None]:
    await csms.start()
    try:
        yield
    finally:
        await csms.stop()


@contextlib.asynccontextmanager
async def running_gateway(
    url: str,
    simulator: SimulatedCharger,
    store: Path,
    *,
    version: str = "1.6",
    **security: Any,
) -> AsyncIterator[StationCore]:
    assert simulator.port is not None
    config = GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(url=url, ocpp_version=version, **security),
        chargers=(
            ChargerSection(
                id=CHARGER_ID,
                host="127.0.0.1",
                port=simulator.port,
                poll_interval_s=0.2,
                vendor="ACME",
                model="Sim 11",
            ),
        ),
    )
    gateway = await Gateway.open(config)
    station: StationCore = (
        gateway.stations_201[CHARGER_ID] if version == "2.0.1" else gateway.stations[CHARGER_ID]
    )
    # Short back-off so tests do not wait for production values; the doubling stays visible.
    station.backoff.minimum_s = 0.1
    station.backoff.random_range_s = 0.05
    station.backoff.repeat_times = 3
    task = asyncio.create_task(gateway.run())
    try:
        yield station
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.close()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def security_events(received: list[Received]) -> list[str]:
    return [m.payload["type"] for m in received if m.action == "SecurityEventNotification"]


def has_security_event(kind: str) -> Callable[[list[Received]], bool]:
    return lambda got: kind in security_events(got)


def assert_never_logged(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """Neither the secrets nor their basic-auth header form appear in any log record."""
    forms = set(secrets)
    forms.update(base64.b64encode(f"{CHARGER_ID}:{secret}".encode()).decode() for secret in secrets)
    for record in caplog.records:
        if not record.name.startswith("gateway"):
            continue  # the test's own central system logs what it receives
        parts = [record.getMessage()]
        for value in record.__dict__.values():
            with contextlib.suppress(ReferenceError):  # a weak proxy whose object is gone
                parts.append(str(value))
        text = " ".join(parts)
        for form in forms:
            assert form not in text, f"a secret reached the log: {record.name} {record.msg!r}"


async def test_profile_1_sends_basic_auth_over_plain_websocket(
    simulator: SimulatedCharger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csms = SecureCsms16()
    csms.gate.passwords = {CHARGER_ID: KEY16}
    async with (
        serving(csms),
        running_gateway(
            csms.url, simulator, tmp_path / "evgw.sqlite3", security_profile=1, password=KEY16
        ),
    ):
        await csms.wait_for_action(CHARGER_ID, "BootNotification")
        received = await csms.wait_for(CHARGER_ID, has_security_event("StartupOfTheDevice"))
    assert csms.gate.authenticated == [(CHARGER_ID, KEY16)]
    assert security_events(received) == ["StartupOfTheDevice"]
    assert_never_logged(caplog, KEY16)


async def test_profile_2_checks_the_server_certificate_and_sends_basic_auth(
    simulator: SimulatedCharger, tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csms = SecureCsms201()
    csms.gate.ssl_context = server_context(pki.server_cert, pki.server_key)
    csms.gate.passwords = {CHARGER_ID: PASSWORD201}
    async with (
        serving(csms),
        running_gateway(
            csms.url,
            simulator,
            tmp_path / "evgw.sqlite3",
            version="2.0.1",
            security_profile=2,
            password=PASSWORD201,
            ca_file=pki.ca,
        ),
    ):
        assert csms.url.startswith("wss://")
        await csms.wait_for(CHARGER_ID, has_security_event("StartupOfTheDevice"))
        station = csms.stations[CHARGER_ID]
        profile = await station.call(
            call201.GetVariables(
                get_variable_data=[
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "SecurityProfile"},
                    }
                ]
            )
        )
    assert csms.gate.authenticated == [(CHARGER_ID, PASSWORD201)]
    assert profile.get_variable_result[0]["attribute_value"] == "2"
    assert_never_logged(caplog, PASSWORD201)


async def test_profile_3_presents_the_client_certificate(
    simulator: SimulatedCharger, tmp_path: Path, pki: Pki
) -> None:
    csms = SecureCsms16()
    csms.gate.ssl_context = server_context(pki.server_cert, pki.server_key, client_ca=pki.ca)
    async with (
        serving(csms),
        running_gateway(
            csms.url,
            simulator,
            tmp_path / "evgw.sqlite3",
            security_profile=3,
            ca_file=pki.ca,
            cert_file=pki.client_cert,
            key_file=pki.client_key,
        ),
    ):
        await csms.wait_for_action(CHARGER_ID, "BootNotification")
        charge_point = csms.charge_points[CHARGER_ID]
        configuration = await charge_point.call(call.GetConfiguration(key=["SecurityProfile"]))
    assert CHARGER_ID in csms.gate.client_certificates
    assert configuration.configuration_key == [
        {"key": "SecurityProfile", "readonly": True, "value": "3"}
    ]


async def test_a_profile_3_station_without_its_certificate_is_refused_by_the_csms(
    simulator: SimulatedCharger, tmp_path: Path, pki: Pki
) -> None:
    csms = SecureCsms16()
    csms.gate.ssl_context = server_context(pki.server_cert, pki.server_key, client_ca=pki.ca)
    # Profile 2 settings against a profile-3 central system: TLS, but no client certificate.
    csms.gate.passwords = None
    async with (
        serving(csms),
        running_gateway(
            csms.url,
            simulator,
            tmp_path / "evgw.sqlite3",
            security_profile=2,
            password=KEY16,
            ca_file=pki.ca,
        ) as station,
    ):
        await asyncio.sleep(1.0)  # several attempts at the shortened back-off
        assert not station.connection.connected
    assert CHARGER_ID not in csms.received


async def test_a_server_certificate_from_another_ca_is_refused_and_reported_later(
    simulator: SimulatedCharger, tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    csms = SecureCsms16()
    csms.gate.ssl_context = server_context(pki.rogue_server_cert, pki.rogue_server_key)
    csms.gate.passwords = {CHARGER_ID: KEY16}
    async with serving(csms):
        url = csms.url
        async with running_gateway(
            url,
            simulator,
            tmp_path / "evgw.sqlite3",
            security_profile=2,
            password=KEY16,
            ca_file=pki.ca,
        ) as station:
            await wait_until(
                lambda: (
                    sum("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records) >= 2
                )
            )
            assert not station.connection.connected
            assert CHARGER_ID not in csms.received  # nothing reached the impostor
            # The real central system comes back on the same address with its own certificate.
            await csms.stop()
            csms.gate.ssl_context = server_context(pki.server_cert, pki.server_key)
            await csms.start()
            received = await csms.wait_for(
                CHARGER_ID, has_security_event("InvalidCentralSystemCertificate")
            )
    event = next(
        m
        for m in received
        if m.action == "SecurityEventNotification"
        and m.payload["type"] == "InvalidCentralSystemCertificate"
    )
    assert "certificate" in event.payload["tech_info"]
    assert csms.gate.authenticated[-1] == (CHARGER_ID, KEY16)


async def test_a_wrong_password_is_refused_and_retried_with_back_off(
    simulator: SimulatedCharger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.ocpp.connection")
    csms = SecureCsms16()
    csms.gate.passwords = {CHARGER_ID: NEW_KEY16}  # not what the gateway has
    async with (
        serving(csms),
        running_gateway(
            csms.url, simulator, tmp_path / "evgw.sqlite3", security_profile=1, password=KEY16
        ) as station,
    ):
        await wait_until(lambda: len(csms.gate.refused) >= 4)
        assert not station.connection.connected
        delays = [
            float(r.args[0])  # type: ignore[index, arg-type]
            for r in caplog.records
            if r.msg == "reconnecting in %.1f s"
        ]
        # The base doubles per failure (0.1, 0.2, 0.4 s) plus a random share below 0.05 s.
        assert delays[0] < delays[1] < delays[2]
        assert all("401" in r.getMessage() for r in caplog.records if "failed" in r.msg)
        # The operator fixes the central system's record: the next attempt gets in.
        csms.gate.passwords = {CHARGER_ID: KEY16}
        received = await csms.wait_for(
            CHARGER_ID, has_security_event("FailedToAuthenticateAtCentralSystem")
        )
    assert {identity for identity, _ in csms.gate.refused} == {CHARGER_ID}
    assert security_events(received).count("FailedToAuthenticateAtCentralSystem") >= 1


async def test_authorization_key_set_by_change_configuration_is_used_from_then_on(
    simulator: SimulatedCharger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = tmp_path / "evgw.sqlite3"
    csms = SecureCsms16()
    csms.gate.passwords = {CHARGER_ID: KEY16}
    async with serving(csms):
        async with running_gateway(csms.url, simulator, store, security_profile=1, password=KEY16):
            await csms.wait_for_action(CHARGER_ID, "BootNotification")
            charge_point = csms.charge_points[CHARGER_ID]
            too_short = await charge_point.call(
                call.ChangeConfiguration(key="AuthorizationKey", value="abcdef")
            )
            not_hex = await charge_point.call(
                call.ChangeConfiguration(key="AuthorizationKey", value="x" * 32)
            )
            changed = await charge_point.call(
                call.ChangeConfiguration(key="AuthorizationKey", value=NEW_KEY16)
            )
            listed = await charge_point.call(call.GetConfiguration(key=["AuthorizationKey"]))
            everything = await charge_point.call(call.GetConfiguration())
            await csms.wait_for(
                CHARGER_ID, has_security_event("ReconfigurationOfSecurityParameters")
            )
            # The central system now expects the new key; a reconnect must present it.
            csms.gate.passwords = {CHARGER_ID: NEW_KEY16}
            await csms.stop()
            await csms.start()
            await wait_until(lambda: (CHARGER_ID, NEW_KEY16) in csms.gate.authenticated)
        # A restart with the old key still configured uses the stored new one.
        authenticated_before = len(csms.gate.authenticated)
        async with running_gateway(csms.url, simulator, store, security_profile=1, password=KEY16):
            await wait_until(lambda: len(csms.gate.authenticated) > authenticated_before)
    assert (too_short.status, not_hex.status, changed.status) == (
        "Rejected",
        "Rejected",
        "Accepted",
    )
    assert listed.configuration_key == [{"key": "AuthorizationKey", "readonly": False}]
    keys = {entry["key"]: entry for entry in everything.configuration_key}
    assert "value" not in keys["AuthorizationKey"]
    assert csms.gate.authenticated[-1] == (CHARGER_ID, NEW_KEY16)
    assert not any(password == KEY16 for _, password in csms.gate.authenticated[1:])
    check = await Store.open(store)
    try:
        assert await check.upstream_password(CHARGER_ID) == NEW_KEY16
    finally:
        await check.close()
    assert_never_logged(caplog, KEY16, NEW_KEY16)


async def test_basic_auth_password_set_by_set_variables_is_write_only_and_used_next(
    simulator: SimulatedCharger, tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csms = SecureCsms201()
    csms.gate.ssl_context = server_context(pki.server_cert, pki.server_key)
    csms.gate.passwords = {CHARGER_ID: PASSWORD201}
    password_variable = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
    }
    async with (
        serving(csms),
        running_gateway(
            csms.url,
            simulator,
            tmp_path / "evgw.sqlite3",
            version="2.0.1",
            security_profile=2,
            password=PASSWORD201,
            ca_file=pki.ca,
        ),
    ):
        await csms.wait_for_action(CHARGER_ID, "BootNotification")
        station = csms.stations[CHARGER_ID]
        refused = await station.call(
            call201.SetVariables(
                set_variable_data=[{**password_variable, "attribute_value": "short"}]
            )
        )
        accepted = await station.call(
            call201.SetVariables(
                set_variable_data=[
                    {**password_variable, "attribute_value": NEW_PASSWORD201},
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "attribute_value": "120",
                    },
                ]
            )
        )
        read = await station.call(call201.GetVariables(get_variable_data=[password_variable]))
        await csms.wait_for(CHARGER_ID, has_security_event("ReconfigurationOfSecurityParameters"))
        csms.gate.passwords = {CHARGER_ID: NEW_PASSWORD201}
        await csms.stop()
        await csms.start()
        await wait_until(lambda: (CHARGER_ID, NEW_PASSWORD201) in csms.gate.authenticated)
    assert refused.set_variable_result[0]["attribute_status"] == "Rejected"
    assert [r["attribute_status"] for r in accepted.set_variable_result] == ["Accepted"] * 2
    assert read.get_variable_result[0]["attribute_status"] == "Rejected"
    assert "attribute_value" not in read.get_variable_result[0]
    assert_never_logged(caplog, PASSWORD201, NEW_PASSWORD201)


# --- configuration checks -------------------------------------------------------------------

BASE = """
[upstream]
url = "{url}"
ocpp_version = "{version}"
{security}

[[chargers]]
id = "CP-1"
host = "192.0.2.10"
"""


def config_problems(tmp_path: Path, url: str, security: str, version: str = "1.6") -> list[str]:
    path = tmp_path / "evgw.toml"
    path.write_text(BASE.format(url=url, version=version, security=security), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as error:
        return list(error.problems)
    return []


def test_the_configuration_check_matches_profiles_urls_passwords_and_files(
    tmp_path: Path, pki: Pki
) -> None:
    assert (
        config_problems(tmp_path, "ws://c/ocpp", f'security_profile = 1\npassword = "{KEY16}"')
        == []
    )
    assert any(
        "security_profile 1 is basic auth over plain ws://" in p
        for p in config_problems(
            tmp_path, "wss://c/ocpp", f'security_profile = 1\npassword = "{KEY16}"'
        )
    )
    assert any(
        "needs a wss:// URL" in p
        for p in config_problems(
            tmp_path, "ws://c/ocpp", f'security_profile = 2\npassword = "{KEY16}"'
        )
    )
    assert any(
        "needs a password" in p
        for p in config_problems(tmp_path, "ws://c/ocpp", "security_profile = 1")
    )
    short = config_problems(tmp_path, "ws://c/ocpp", 'security_profile = 1\npassword = "abc"')
    assert any("32 to 40 hexadecimal" in p for p in short)
    assert all("abc" not in p for p in short)  # the value itself is never shown
    assert any(
        "16 to 40 characters" in p
        for p in config_problems(
            tmp_path, "ws://c/ocpp", 'security_profile = 1\npassword = "abc"', version="2.0.1"
        )
    )
    assert any(
        "needs cert_file and key_file" in p
        for p in config_problems(tmp_path, "wss://c/ocpp", "security_profile = 3")
    )
    assert any(
        "is not a readable file" in p
        for p in config_problems(
            tmp_path,
            "wss://c/ocpp",
            f'security_profile = 3\ncert_file = "{tmp_path}/missing.pem"\n'
            f'key_file = "{pki.client_key}"',
        )
    )
    assert any(
        "upstream.security_profile" in p
        for p in config_problems(tmp_path, "ws://c/ocpp", "security_profile = 4")
    )
    # Files that exist but do not belong together: the client key of another certificate.
    assert any(
        "the TLS files do not load" in p
        for p in config_problems(
            tmp_path,
            "wss://c/ocpp",
            f'security_profile = 3\ncert_file = "{pki.client_cert}"\n'
            f'key_file = "{pki.server_key}"\nca_file = "{pki.ca}"',
        )
    )
    assert (
        config_problems(
            tmp_path,
            "wss://c/ocpp",
            f'security_profile = 3\ncert_file = "{pki.client_cert}"\n'
            f'key_file = "{pki.client_key}"\nca_file = "{pki.ca}"',
        )
        == []
    )


def test_password_rules_per_version() -> None:
    assert authorization_key_problem(KEY16) is None
    assert authorization_key_problem(NEW_KEY16) is None
    assert authorization_key_problem("0" * 31) is not None  # odd: not whole bytes
    assert authorization_key_problem("0" * 42) is not None  # 21 bytes
    assert basic_auth_password_problem(PASSWORD201) is None
    assert basic_auth_password_problem("a" * 41) is not None
    assert basic_auth_password_problem("spaces are not ok") is not None
    assert SecurityEvent.INVALID_SERVER_CERTIFICATE.wire_name("2.0.1") == "InvalidCsmsCertificate"
    assert SecurityEvent.FAILED_TO_AUTHENTICATE.wire_name("1.6") == (
        "FailedToAuthenticateAtCentralSystem"
    )
