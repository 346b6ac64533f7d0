"""Southbound MQTT: an asyncio client over paho-mqtt, a charger driver built from payload
styles (go-e API v2, openWB 2.x generic MQTT chargepoint, the gateway's own JSON schema in
docs/mqtt-charger-schema.md) and simulated MQTT chargers for tests and the demo.

Typical use::

    client = MqttClient(MqttConfig(host="192.0.2.5", username="gw", password=secret))
    await client.connect()
    charger = MqttCharger(client, goe_style("012345"), stale_after_s=30)
    await charger.start()
    reading = await charger.read()
    await charger.set_current_limit(16.0)
"""

from gateway.mqtt.client import (
    MessageHandler,
    MqttAuthError,
    MqttClient,
    MqttConfig,
    MqttConnectError,
    MqttError,
    MqttMessage,
    MqttNotConnected,
    MqttPublishError,
    MqttTimeout,
    MqttTls,
    MqttWill,
)
from gateway.mqtt.driver import MqttCharger
from gateway.mqtt.styles import (
    EVGW_SCHEMA_VERSION,
    MqttChargerStyle,
    PayloadError,
    evgw_style,
    goe_style,
    openwb_style,
)

__all__ = [
    "EVGW_SCHEMA_VERSION",
    "MessageHandler",
    "MqttAuthError",
    "MqttCharger",
    "MqttChargerStyle",
    "MqttClient",
    "MqttConfig",
    "MqttConnectError",
    "MqttError",
    "MqttMessage",
    "MqttNotConnected",
    "MqttPublishError",
    "MqttTimeout",
    "MqttTls",
    "MqttWill",
    "PayloadError",
    "evgw_style",
    "goe_style",
    "openwb_style",
]
