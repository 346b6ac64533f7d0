"""The asyncio MQTT client against a real Mosquitto: QoS, retained, will, reconnect with
resubscription, authentication, TLS, and no password in the logs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from typing import Any

import pytest

from gateway.mqtt import (
    MqttAuthError,
    MqttClient,
    MqttConfig,
    MqttConnectError,
    MqttMessage,
    MqttNotConnected,
    MqttTls,
    MqttWill,
)
from gateway.mqtt.broker import LocalBroker

from .conftest import PASSWORD, USERNAME, SecureBroker, eventually


def config(port: int, client_id: str, **kwargs: Any) -> MqttConfig:
    return dataclasses.replace(MqttConfig(port=port, client_id=client_id), **kwargs)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[MqttMessage] = []

    def __call__(self, message: MqttMessage) -> None:
        self.messages.append(message)

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic == topic]


async def test_qos_levels_and_retained_messages(broker: LocalBroker) -> None:
    async with (
        MqttClient(config(broker.port, "pub")) as pub,
        MqttClient(config(broker.port, "sub")) as sub,
    ):
        inbox = Inbox()
        for qos in (0, 1, 2):
            await sub.subscribe(f"t/q{qos}", inbox, qos=qos)
        for qos in (0, 1, 2):
            await pub.publish(f"t/q{qos}", f"hello {qos}".encode(), qos=qos)

        async def all_arrived() -> None:
            for qos in (0, 1, 2):
                assert inbox.payloads(f"t/q{qos}") == [f"hello {qos}".encode()]

        await eventually(all_arrived, what="one message per QoS")
        assert {m.qos for m in inbox.messages} == {0, 1, 2}

        await pub.publish("t/retained", b"kept", qos=1, retain=True)
        late = Inbox()
        await sub.subscribe("t/retained", late)

        async def retained_arrived() -> None:
            assert [(m.payload, m.retain) for m in late.messages] == [(b"kept", True)]

        await eventually(retained_arrived, what="retained message to a late subscriber")


async def test_handler_exception_does_not_break_the_client(broker: LocalBroker) -> None:
    async with MqttClient(config(broker.port, "c")) as client:
        inbox = Inbox()

        def broken(message: MqttMessage) -> None:
            raise RuntimeError("handler bug")

        await client.subscribe("t/#", broken)
        await client.subscribe("t/#", inbox)
        await client.publish("t/a", b"1")
        await client.publish("t/b", b"2")

        async def both() -> None:
            assert [m.payload for m in inbox.messages] == [b"1", b"2"]

        await eventually(both, what="messages after a failing handler")


async def test_last_will_is_published_when_the_connection_drops(broker: LocalBroker) -> None:
    will = MqttWill("dev/status", b"offline", qos=1, retain=True)
    async with MqttClient(config(broker.port, "observer")) as observer:
        inbox = Inbox()
        await observer.subscribe("dev/status", inbox)
        device = MqttClient(config(broker.port, "device", will=will))
        await device.connect()
        await device.publish("dev/status", b"online", retain=True)
        await eventually(
            lambda: _expect(inbox.payloads("dev/status") == [b"online"]), what="online"
        )
        await device.abort()
        await eventually(
            lambda: _expect(inbox.payloads("dev/status")[-1:] == [b"offline"]), what="will"
        )


async def test_clean_close_does_not_publish_the_will(broker: LocalBroker) -> None:
    will = MqttWill("dev/status", b"offline", qos=1, retain=True)
    async with MqttClient(config(broker.port, "observer")) as observer:
        device = MqttClient(config(broker.port, "device", will=will))
        await device.connect()
        await device.close()
        inbox = Inbox()
        await observer.subscribe("dev/status", inbox)
        await observer.publish("sync", b"x")  # a round trip through the broker
        await asyncio.sleep(0.2)
        assert inbox.payloads("dev/status") == []


async def test_reconnects_and_resubscribes_after_a_broker_restart(broker: LocalBroker) -> None:
    client = MqttClient(config(broker.port, "c", reconnect_max_delay_s=1))
    await client.connect()
    inbox = Inbox()
    await client.subscribe("a/+", inbox, qos=1)
    await client.subscribe("b/#", inbox, qos=2)
    states: list[bool] = []
    client.add_connection_listener(states.append)
    try:
        await broker.restart()

        async def reconnected() -> None:
            assert client.connected
            assert client.connect_count == 2

        await eventually(reconnected, what="reconnection")
        assert states == [False, True]
        async with MqttClient(config(broker.port, "other")) as other:
            await other.publish("a/x", b"after restart")
            await other.publish("b/y/z", b"deep")

            async def resubscribed() -> None:
                assert inbox.payloads("a/x") == [b"after restart"]
                assert inbox.payloads("b/y/z") == [b"deep"]

            await eventually(resubscribed, what="messages on both resubscribed filters")
    finally:
        await client.close()


async def test_publish_without_a_broker_fails_at_once(broker: LocalBroker) -> None:
    client = MqttClient(config(broker.port, "c", ack_timeout_s=1.0))
    await client.connect()
    try:
        await broker.stop()
        await eventually(lambda: _expect(not client.connected), what="loss noticed")
        with pytest.raises(MqttNotConnected):
            await client.publish("t", b"x", qos=1)
    finally:
        await client.close()


async def test_unreachable_broker_is_a_connect_error() -> None:
    from gateway.mqtt.broker import free_port

    client = MqttClient(config(free_port(), "c"))
    with pytest.raises(MqttConnectError, match="no connection"):
        await client.connect(timeout_s=1.0)
    assert not client.connected


async def test_password_authentication(secure_broker: SecureBroker) -> None:
    async with MqttClient(
        config(secure_broker.plain_port, "c", username=USERNAME, password=PASSWORD)
    ) as client:
        await client.publish("t", b"x", qos=1)
        assert client.connected


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, "wrong-password"), ("nobody", PASSWORD), (None, None)],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
async def test_wrong_credentials_give_a_clear_error(
    secure_broker: SecureBroker, username: str | None, password: str | None
) -> None:
    client = MqttClient(config(secure_broker.plain_port, "c", username=username, password=password))
    with pytest.raises(MqttAuthError, match="refused the credentials") as info:
        await client.connect(timeout_s=5.0)
    assert "Not authorized" in str(info.value) or "Bad user name" in str(info.value)
    if password:
        assert password not in str(info.value)
    assert not client.connected


async def test_password_never_reaches_a_log_record(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = config(secure_broker.plain_port, "c", username=USERNAME, password=PASSWORD)
    assert PASSWORD not in repr(good)
    async with MqttClient(good) as client:
        await client.publish("t", b"x", qos=1)
    wrong_password = PASSWORD + "-wrong"
    with pytest.raises(MqttAuthError):
        await MqttClient(
            config(secure_broker.plain_port, "d", username=USERNAME, password=wrong_password)
        ).connect(timeout_s=5.0)
    records = caplog.records
    assert any(r.name.startswith("gateway.mqtt") for r in records)
    assert any("paho" in r.name for r in records), "paho's own debug log is captured too"
    for record in records:
        text = f"{record.getMessage()} {record.__dict__!r}"
        assert PASSWORD not in text
        assert wrong_password not in text


async def test_tls_with_ca_and_password(secure_broker: SecureBroker) -> None:
    tls = MqttTls(ca_file=str(secure_broker.pki.ca_file))
    async with MqttClient(
        config(secure_broker.tls_port, "c", username=USERNAME, password=PASSWORD, tls=tls)
    ) as client:
        inbox = Inbox()
        await client.subscribe("secure", inbox)
        await client.publish("secure", b"over tls", qos=2)
        await eventually(lambda: _expect(inbox.payloads("secure") == [b"over tls"]), what="tls")


async def test_tls_refuses_a_broker_signed_by_another_ca(secure_broker: SecureBroker) -> None:
    tls = MqttTls(ca_file=str(secure_broker.pki.other_ca_file))
    client = MqttClient(
        config(secure_broker.tls_port, "c", username=USERNAME, password=PASSWORD, tls=tls)
    )
    with pytest.raises(MqttConnectError):
        await client.connect(timeout_s=2.0)


async def test_tls_checks_the_host_name_unless_insecure(secure_broker: SecureBroker) -> None:
    # The server certificate names 127.0.0.1 and localhost, not 127.0.0.2.
    strict = MqttTls(ca_file=str(secure_broker.pki.ca_file))
    assert strict.context().check_hostname is True
    assert strict.context().verify_mode == ssl.CERT_REQUIRED
    insecure = MqttTls(ca_file=str(secure_broker.pki.ca_file), insecure=True)
    assert insecure.context().check_hostname is False
    assert insecure.context().verify_mode == ssl.CERT_REQUIRED


async def test_tls_with_a_client_certificate(secure_broker: SecureBroker) -> None:
    pki = secure_broker.pki
    with_cert = MqttTls(
        ca_file=str(pki.ca_file), cert_file=str(pki.client_cert), key_file=str(pki.client_key)
    )
    async with MqttClient(
        config(secure_broker.mtls_port, "c", username=USERNAME, password=PASSWORD, tls=with_cert)
    ) as client:
        await client.publish("t", b"x", qos=1)
    without_cert = MqttTls(ca_file=str(pki.ca_file))
    client = MqttClient(
        config(secure_broker.mtls_port, "d", username=USERNAME, password=PASSWORD, tls=without_cert)
    )
    with pytest.raises(MqttConnectError):
        await client.connect(timeout_s=2.0)


async def _expect(condition: bool) -> None:
    assert condition
