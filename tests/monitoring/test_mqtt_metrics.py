"""MQTT counters in the exposition, through a real Mosquitto: a charger on our own schema
(its simulator) and garbage published on its state topic."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from pathlib import Path

from gateway.config import parse_config
from gateway.mqtt import MqttClient, MqttConfig
from gateway.mqtt.broker import LocalBroker
from gateway.mqtt.simulator import EvgwSimulator
from gateway.runtime import Gateway
from tests.monitoring.site import until
from tests.monitoring.test_metrics import scrape, value
from tests.ocpp.central_system_ocpp import OcppPackageCsms


async def test_mqtt_messages_and_malformed_payloads_are_counted(tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        csms = OcppPackageCsms()
        await csms.start()
        stack.push_async_callback(csms.stop)
        broker = LocalBroker.anonymous(tmp_path)
        await broker.start()
        stack.push_async_callback(broker.stop)
        simulator = EvgwSimulator(
            MqttConfig(port=broker.port, client_id="sim"), "CP-MQTT", interval_s=0.2
        )
        await simulator.start()
        stack.push_async_callback(simulator.stop)
        text = f"""
[gateway]
store = "{tmp_path / "evgw.sqlite3"}"
[upstream]
url = "{csms.url}"
[[chargers]]
id = "CP-MQTT"
transport = "mqtt"
mqtt_style = "evgw"
poll_interval_s = 0.2
[mqtt]
host = "127.0.0.1"
port = {broker.port}
client_id = "gateway-under-test"
"""
        gateway = await Gateway.open(parse_config(tomllib.loads(text)))
        stack.push_async_callback(gateway.close)
        running = asyncio.create_task(gateway.run())

        async def stop() -> None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

        stack.push_async_callback(stop)
        await until(lambda: gateway.site.connector("CP-MQTT").online, "the MQTT charger answers")

        intruder = MqttClient(MqttConfig(port=broker.port, client_id="garbage"))
        await intruder.connect()
        stack.push_async_callback(intruder.close)
        await intruder.publish("evgw/chargers/CP-MQTT/state", b"{not json")
        await until(
            lambda: any(
                s.labels == {"charger": "CP-MQTT", "reason": "not_json"}
                for s in scrape(gateway).get("evgw_mqtt_malformed_total", [])
            ),
            "the malformed payload is counted",
        )
        samples = scrape(gateway)
        assert value(samples, "evgw_mqtt_malformed_total", reason="not_json") == 1.0
        assert value(samples, "evgw_mqtt_messages_received_total") > 5
        assert value(samples, "evgw_mqtt_connected") == 1.0
        assert value(samples, "evgw_poll_duration_seconds_count", transport="mqtt") > 0
        assert value(samples, "evgw_charger_online", charger="CP-MQTT") == 1.0
