"""The site's southbound side, built from the configuration: one driver per charger over its
transport (Modbus TCP, RTU on a serial line, RTU over TCP, MQTT), the site and circuit meters,
and the links they share.

Chargers and meters on one Modbus bus share one link (requests serialized per bus, buses in
parallel); every MQTT charger shares one broker connection. A broker or a bus that is down
at start-up is not fatal: its chargers read as unavailable until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from gateway.config import (
    ChargerSection,
    ConfigError,
    GatewayConfig,
    MeterSection,
    MqttSection,
    SerialSection,
)
from gateway.core.site import ChargerDriver
from gateway.meters import MeterMonitor, ModbusMeter, load_meter_profile
from gateway.modbus import ModbusCharger, ModbusLink, ModbusLinkPool, ProfileError, load_profile
from gateway.modbus.link import SerialSettings
from gateway.modbus.profile import ChargerProfile
from gateway.mqtt import (
    MqttCharger,
    MqttChargerStyle,
    MqttClient,
    MqttConfig,
    MqttTls,
    evgw_style,
    goe_style,
    openwb_style,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChargerCapabilities:
    """What the balancing needs to know of a charger, from its profile or MQTT style."""

    model: str
    """A short model name for BootNotification (the profile or style name)."""
    min_current_a: float
    max_current_a: float
    resolution_a: float
    has_watchdog: bool
    """The gateway can program a watchdog with a failsafe current."""
    can_switch_phases: bool = False
    """The profile or style can switch between one and three phases."""


class Southbound:
    """Drivers, meters and their links; `start()`, `run()` until cancelled, `close()`."""

    def __init__(self) -> None:
        self.pool = ModbusLinkPool()
        self.mqtt: MqttClient | None = None
        self.drivers: dict[str, ChargerDriver] = {}
        self.capabilities: dict[str, ChargerCapabilities] = {}
        self.meters: dict[str, MeterMonitor] = {}
        """Meter monitors by the circuit they measure."""
        self._mqtt_chargers: list[MqttCharger] = []
        # One parse per profile, not per charger: a 500-charger site names a handful of
        # profiles, and parsing one is milliseconds (most of a large site's start-up).
        self._profiles: dict[str, ChargerProfile] = {}

    @classmethod
    def build(cls, config: GatewayConfig) -> Southbound:
        """Build every driver and meter. Raises `ConfigError` naming the key for an unknown
        or malformed profile, or a bus named with two different settings."""
        southbound = cls()
        problems: list[str] = []
        for index, charger in enumerate(config.chargers):
            where = f"chargers[{index}]"
            try:
                southbound._add_charger(config, charger)
            except (ProfileError, OSError) as error:
                problems.append(f"{where}.profile: {error}")
            except ValueError as error:
                problems.append(f"{where}.transport: {error}")
        for index, meter in enumerate(config.meters):
            try:
                southbound._add_meter(meter)
            except (ProfileError, OSError) as error:
                problems.append(f"meters[{index}].profile: {error}")
            except ValueError as error:
                problems.append(f"meters[{index}].transport: {error}")
        if problems:
            raise ConfigError(problems)
        return southbound

    async def start(self) -> None:
        """Start connecting to the MQTT broker (in the background) and subscribe."""
        if self.mqtt is not None:
            self.mqtt.start()
            for charger in self._mqtt_chargers:
                await charger.start()

    async def run(self) -> None:
        """Poll the meters until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for circuit_id, monitor in self.meters.items():
                tasks.create_task(monitor.run(), name=f"meter-{circuit_id}")

    async def close(self) -> None:
        for charger in self._mqtt_chargers:
            with contextlib.suppress(Exception):
                await charger.close()
        if self.mqtt is not None:
            await self.mqtt.close()
        await self.pool.close()

    # ------------------------------------------------------------------ building

    def _add_charger(self, config: GatewayConfig, charger: ChargerSection) -> None:
        if charger.transport == "mqtt":
            self._add_mqtt_charger(config, charger)
            return
        profile = self._profiles.get(charger.profile)
        if profile is None:
            profile = self._profiles[charger.profile] = load_profile(charger.profile)
        link = self._link(charger.transport, charger.host, charger.port, charger.serial, profile)
        self.drivers[charger.id] = ModbusCharger(link, charger.unit_id, profile, name=charger.id)
        self.capabilities[charger.id] = ChargerCapabilities(
            model=profile.name,
            min_current_a=profile.current.min_a,
            max_current_a=profile.current.max_a,
            resolution_a=profile.current.resolution_a,
            has_watchdog=profile.watchdog is not None and profile.failsafe_current is not None,
            can_switch_phases=profile.phases is not None,
        )

    def _add_mqtt_charger(self, config: GatewayConfig, charger: ChargerSection) -> None:
        assert config.mqtt is not None, "parse_config requires [mqtt] for MQTT chargers"
        if self.mqtt is None:
            self.mqtt = MqttClient(_mqtt_config(config.mqtt), name=f"broker {config.mqtt.host}")
        style = _style(charger)
        driver = MqttCharger(
            self.mqtt,
            style,
            name=charger.id,
            stale_after_s=config.mqtt.stale_after_s,
            max_current_a=charger.max_current_a,
        )
        self._mqtt_chargers.append(driver)
        self.drivers[charger.id] = driver
        self.capabilities[charger.id] = ChargerCapabilities(
            model=style.name,
            min_current_a=6.0,
            max_current_a=style.max_current_a,
            resolution_a=style.resolution_a,
            # Our own schema carries the watchdog and failsafe in every command; go-e and
            # openWB have none the gateway can set.
            has_watchdog=style.keepalive_s is not None,
            can_switch_phases=style.supports_phases,
        )

    def _add_meter(self, meter: MeterSection) -> None:
        profile = load_meter_profile(meter.profile)
        link = self._link(
            meter.transport, meter.host, meter.port, meter.serial, None, profile.requests.min_gap_s
        )
        driver = ModbusMeter(link, meter.unit_id, profile, name=meter.id)
        self.meters[meter.circuit] = MeterMonitor(
            driver, interval_s=meter.poll_interval_s, stale_after_s=meter.stale_after_s
        )

    def _link(
        self,
        transport: str,
        host: str,
        port: int,
        serial: SerialSection | None,
        profile: ChargerProfile | None,
        gap_s: float = 0.0,
    ) -> ModbusLink:
        if profile is not None:
            gap_s = profile.requests.min_gap_s
        if transport == "tcp":
            return self.pool.link(host, port, request_gap_s=gap_s)
        if transport == "rtu-over-tcp":
            return self.pool.rtu_over_tcp_link(host, port, request_gap_s=gap_s)
        assert serial is not None, "parse_config requires serial_port for rtu"
        settings = SerialSettings(
            baudrate=serial.baudrate,
            parity=serial.parity,
            stopbits=serial.stop_bits,
            bytesize=serial.byte_size,
        )
        return self.pool.serial_link(serial.port, settings, request_gap_s=gap_s)


def _style(charger: ChargerSection) -> MqttChargerStyle:
    mqtt_id = charger.mqtt_id or charger.id
    if charger.mqtt_style == "go-e":
        return goe_style(mqtt_id, max_current_a=charger.max_current_a)
    if charger.mqtt_style == "openwb":
        return openwb_style(mqtt_id, max_current_a=charger.max_current_a)
    return evgw_style(
        mqtt_id,
        watchdog_s=float(charger.watchdog_timeout_s) or None,
        failsafe_current_a=charger.failsafe_current_a,
        max_current_a=charger.max_current_a,
    )


def _mqtt_config(section: MqttSection) -> MqttConfig:
    tls = None
    if section.tls:
        tls = MqttTls(
            ca_file=None if section.ca_file is None else str(section.ca_file),
            cert_file=None if section.cert_file is None else str(section.cert_file),
            key_file=None if section.key_file is None else str(section.key_file),
        )
    return MqttConfig(
        host=section.host,
        port=section.port,
        client_id=section.client_id,
        username=section.username,
        password=section.password,
        tls=tls,
        keepalive_s=section.keepalive_s,
    )
