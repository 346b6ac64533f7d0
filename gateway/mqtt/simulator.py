"""Simulated MQTT chargers: an MQTT client acting as the charger, for tests and the demo.

Each simulator exposes a `SimulatedChargePoint` (the physics: EV, lagging current, taper,
faults, watchdog -> failsafe) in one payload style: `GoeSimulator` (go-e API v2),
`OpenWbSimulator` (openWB 2.x generic MQTT chargepoint) and `EvgwSimulator` (the gateway's
own schema). A simulator publishes its retained state every `interval_s` and right after
every command it obeys, registers its own last will, and can

* `go_silent()` / `resume()`: stop publishing while staying connected (stale data);
* `crash()`: drop the connection without DISCONNECT, so the broker publishes the will;
  `restart()` connects again (a go-e forgets the current set over the API, §5);
* fault on demand through `charge_point.inject_fault()` / `clear_fault()`;
* `inject(topic, payload)`: publish anything (garbage) on one of its topics;
* `refuse_commands = "reason"`: answer every command negatively (where the style answers).

Commands received are recorded in `commands` (topic, payload) for tests to assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

import orjson

from gateway.core.charger import CpState
from gateway.mqtt.client import MqttClient, MqttConfig, MqttError, MqttMessage, MqttWill
from gateway.mqtt.styles import EVGW_SCHEMA_VERSION
from gateway.simulation import NOMINAL_VOLTAGE_V, PILOT_MINIMUM_A, SimulatedChargePoint

log = logging.getLogger(__name__)

__all__ = ["EvgwSimulator", "GoeSimulator", "MqttChargerSimulator", "OpenWbSimulator"]


class MqttChargerSimulator:
    """Common machinery; subclasses define topics, state payloads and command handling."""

    style_name = "?"

    def __init__(
        self,
        config: MqttConfig,
        *,
        charge_point: SimulatedChargePoint | None = None,
        interval_s: float = 0.5,
        name: str = "sim",
    ) -> None:
        self.name = name
        self.charge_point = charge_point or SimulatedChargePoint(name=name)
        self.interval_s = interval_s
        will = self.will()
        self._config = dataclasses.replace(
            config, will=will, client_id=config.client_id or f"sim-{self.style_name}-{name}"
        )
        self.client = MqttClient(self._config, name=f"sim {name}")
        self.silent = False
        self.refuse_commands: str | None = None
        self.commands: list[tuple[str, bytes]] = []
        self.rejected: list[tuple[str, bytes, str]] = []
        self.publish_count = 0
        self._task: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()
        self._started_at = time.monotonic()

    # ------------------------------------------------------------------ for subclasses

    def will(self) -> MqttWill | None:
        return None

    def online_message(self) -> tuple[str, bytes] | None:
        return None

    def command_filters(self) -> tuple[str, ...]:
        return ()

    def state_messages(self) -> list[tuple[str, bytes]]:
        raise NotImplementedError

    def handle_command(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """Obey one command; return a reply (topic, payload) to publish, if the style has one."""
        raise NotImplementedError

    def on_restart(self) -> None:
        """What the charger forgets when it restarts."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.client.connect()
        for topic_filter in self.command_filters():
            await self.client.subscribe(topic_filter, self._on_command, qos=1)
        self._task = asyncio.create_task(self._run(), name=f"mqtt-sim {self.name}")

    async def stop(self) -> None:
        """A clean shutdown: announce offline (as a go-e does), then DISCONNECT."""
        await self._stop_tasks()
        will = self._config.will
        if will is not None and self.client.connected:
            with contextlib.suppress(MqttError):
                await self.client.publish(
                    will.topic, will.payload, qos=will.qos, retain=will.retain
                )
        await self.client.close()

    async def crash(self) -> None:
        """Vanish without DISCONNECT: the broker publishes the last will."""
        await self._stop_tasks()
        await self.client.abort()

    async def restart(self) -> None:
        """Connect again after `crash()` or `stop()`, as a rebooted charger."""
        self.on_restart()
        self.client = MqttClient(self._config, name=f"sim {self.name}")
        await self.start()

    def go_silent(self) -> None:
        self.silent = True

    def resume(self) -> None:
        self.silent = False

    async def inject(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish `payload` as it is on `topic` (garbage injection for tests)."""
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def publish_state(self) -> None:
        for topic, payload in self.state_messages():
            await self.client.publish(topic, payload, qos=0, retain=True)
        self.publish_count += 1

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._task, *self._replies) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def _run(self) -> None:
        announced = 0
        while True:
            try:
                if self.client.connected:
                    if self.client.connect_count != announced:
                        online = self.online_message()
                        if online is not None:
                            await self.client.publish(*online, qos=1, retain=True)
                        announced = self.client.connect_count
                    if not self.silent:
                        await self.publish_state()
            except MqttError as exc:
                log.debug("simulator publish failed: %s", exc, extra={"charger": self.name})
            await asyncio.sleep(self.interval_s)

    def _on_command(self, message: MqttMessage) -> None:
        self.commands.append((message.topic, message.payload))
        if not message.payload and message.retain:
            return  # a cleared retained command
        reply = self.handle_command(message.topic, message.payload)
        task = asyncio.get_running_loop().create_task(self._answer(reply))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _answer(self, reply: tuple[str, bytes] | None) -> None:
        try:
            if reply is not None:
                await self.client.publish(*reply, qos=1, retain=False)
            if not self.silent:
                await self.publish_state()
        except MqttError as exc:
            log.debug("simulator reply failed: %s", exc, extra={"charger": self.name})

    def _reject(self, topic: str, payload: bytes, reason: str) -> None:
        self.rejected.append((topic, payload, reason))
        log.info("simulator rejected a command", extra={"charger": self.name, "reason": reason})

    def _rfid(self) -> str | None:
        ev = self.charge_point.ev
        return ev.rfid if ev is not None else None

    def _session_wh(self) -> float:
        ev = self.charge_point.ev
        return ev.delivered_wh if ev is not None else 0.0


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


# ---------------------------------------------------------------------- go-e


class GoeSimulator(MqttChargerSimulator):
    """A go-e charger (API v2) with serial `serial`. Starts like a fresh go-e: `amp` 16 A,
    `frc` 0 (Neutral: charges when a car is plugged in)."""

    style_name = "go-e"

    def __init__(
        self,
        config: MqttConfig,
        serial: str,
        *,
        prefix: str = "go-eCharger/",
        initial_amp: int = 16,
        max_amp: int = 32,
        **kwargs: Any,
    ) -> None:
        self.base = f"{prefix}{serial}"
        self.initial_amp = initial_amp
        self.max_amp = max_amp
        self.amp = initial_amp
        self.frc = 0
        self.psm = 0
        super().__init__(config, name=kwargs.pop("name", serial), **kwargs)
        self._apply()

    def topic(self, key: str) -> str:
        return f"{self.base}/{key}"

    def will(self) -> MqttWill:
        return MqttWill(self.topic("mcc"), b"false", qos=1, retain=True)

    def online_message(self) -> tuple[str, bytes]:
        return (self.topic("mcc"), b"true")

    def command_filters(self) -> tuple[str, ...]:
        return (f"{self.base}/+/set",)

    def on_restart(self) -> None:
        # chargers.md §5: the current set over the API is volatile.
        self.amp = self.initial_amp
        self.frc = 0
        self._apply()

    def _apply(self) -> None:
        cp = self.charge_point
        cp.set_setpoint(float(self.amp))
        cp.set_enabled(self.frc != 1)
        cp.set_phases(1 if self.psm == 1 else 3)

    def handle_command(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        key = topic[len(self.base) + 1 : -len("/set")]
        result_topic = f"{self.base}/{key}/result"
        if self.refuse_commands is not None:
            self._reject(topic, payload, self.refuse_commands)
            return (result_topic, self.refuse_commands.encode())
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            text = f"invalid json: {payload[:40].decode(errors='replace')}"
            self._reject(topic, payload, text)
            return (result_topic, text.encode())
        error = self._set(key, value)
        if error is not None:
            self._reject(topic, payload, error)
            return (result_topic, error.encode())
        self.charge_point.note_write()
        self._apply()
        return (result_topic, b"success")

    def _set(self, key: str, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"value must be integer {value!r}"
        if key == "amp":
            if not 6 <= value <= self.max_amp:
                return f"value out of range {value}"
            self.amp = value
        elif key == "frc":
            if value not in (0, 1, 2):
                return f"value out of range {value}"
            self.frc = value
        elif key == "psm":
            if value not in (0, 1, 2):
                return f"value out of range {value}"
            self.psm = value
        else:
            return f"unknown key {key}"
        return None

    def _car(self) -> int:
        cp = self.charge_point
        state = cp.cp_state
        if state.faulted:
            return 5
        if state is CpState.A:
            return 1
        if state.charging:
            return 2
        ev = cp.ev
        return 4 if ev is not None and ev.full else 3

    def state_messages(self) -> list[tuple[str, bytes]]:
        cp = self.charge_point
        currents = cp.phase_currents_a
        voltage = NOMINAL_VOLTAGE_V
        powers = [round(i * voltage, 1) for i in currents]
        offered = cp.offered_a
        nrg = [
            voltage, voltage, voltage, 0.0,
            *(round(i, 3) for i in currents),
            *powers, 0.0, round(sum(powers), 1),
            1.0, 1.0, 1.0, 0.0,
        ]  # fmt: skip
        values: dict[str, Any] = {
            "car": self._car(),
            "amp": self.amp,
            "frc": self.frc,
            "psm": self.psm,
            "alw": offered > 0,
            "acu": int(offered) if offered > 0 else None,
            "nrg": nrg,
            "eto": int(cp.energy_wh),
            "wh": round(self._session_wh(), 1),
            "err": cp.error_code,
            "modelStatus": {0: 15, 1: 4, 2: 3}[self.frc],
            "rbt": int((time.monotonic() - self._started_at) * 1000),
        }
        return [(self.topic(key), _json(value)) for key, value in values.items()]


# ---------------------------------------------------------------------- openWB


class OpenWbSimulator(MqttChargerSimulator):
    """An openWB 2.x generic MQTT chargepoint device `chargepoint_id`: publishes
    `openWB/mqtt/chargepoint/<id>/get/…` and obeys the retained `…/set/current` and
    `…/set/phases_to_use` (as the openWB core republishes them). `availability_topic`: an
    optional JSON true/false topic with a last will of false (openWB defines none)."""

    style_name = "openWB"

    def __init__(
        self,
        config: MqttConfig,
        chargepoint_id: int | str,
        *,
        availability_topic: str | None = None,
        max_current_a: float = 32.0,
        **kwargs: Any,
    ) -> None:
        self.base = f"openWB/mqtt/chargepoint/{chargepoint_id}"
        self.availability_topic = availability_topic
        self.max_current_a = max_current_a
        super().__init__(config, name=kwargs.pop("name", f"cp{chargepoint_id}"), **kwargs)
        # Until told otherwise the device offers nothing.
        self.charge_point.set_setpoint(0.0)

    def will(self) -> MqttWill | None:
        if self.availability_topic is None:
            return None
        return MqttWill(self.availability_topic, b"false", qos=1, retain=True)

    def online_message(self) -> tuple[str, bytes] | None:
        if self.availability_topic is None:
            return None
        return (self.availability_topic, b"true")

    def command_filters(self) -> tuple[str, ...]:
        return (f"{self.base}/set/+",)

    def handle_command(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        key = topic.rsplit("/", 1)[-1]
        if self.refuse_commands is not None:
            self._reject(topic, payload, self.refuse_commands)
            return None
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._reject(topic, payload, "not JSON")
            return None
        cp = self.charge_point
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if key == "current" and number and 0 <= value <= self.max_current_a:
            cp.set_setpoint(float(value) if value >= PILOT_MINIMUM_A else 0.0)
        elif key == "phases_to_use" and value in (1, 3) and not isinstance(value, bool):
            cp.set_phases(int(value))
        else:
            self._reject(topic, payload, f"invalid {key} {value!r}")
            return None
        cp.note_write()
        return None

    def state_messages(self) -> list[tuple[str, bytes]]:
        cp = self.charge_point
        currents = cp.phase_currents_a
        state = cp.cp_state
        values: dict[str, Any] = {
            "power": round(cp.power_w, 1),
            "phases_in_use": sum(1 for i in currents if i > 0),
            "imported": round(cp.energy_wh, 3),
            "exported": 0.0,
            "currents": [round(i, 3) for i in currents],
            "voltages": [NOMINAL_VOLTAGE_V] * 3,
            "plug_state": cp.ev is not None,
            "charge_state": state.charging,
            "rfid": self._rfid(),
            "evse_current": cp.offered_a,
            "max_evse_current": self.max_current_a,
        }
        return [(f"{self.base}/get/{key}", _json(value)) for key, value in values.items()]


# ---------------------------------------------------------------------- evgw schema


class EvgwSimulator(MqttChargerSimulator):
    """A charger implementing the gateway's own schema (docs/mqtt-charger-schema.md)."""

    style_name = "evgw"

    def __init__(
        self,
        config: MqttConfig,
        charger_id: str,
        *,
        prefix: str = "evgw/chargers",
        max_current_a: float = 32.0,
        **kwargs: Any,
    ) -> None:
        self.base = f"{prefix}/{charger_id}"
        self.max_current_a = max_current_a
        super().__init__(config, name=kwargs.pop("name", charger_id), **kwargs)
        self.charge_point.set_setpoint(0.0)

    def will(self) -> MqttWill:
        return MqttWill(f"{self.base}/availability", b"offline", qos=1, retain=True)

    def online_message(self) -> tuple[str, bytes]:
        return (f"{self.base}/availability", b"online")

    def command_filters(self) -> tuple[str, ...]:
        return (f"{self.base}/set",)

    def handle_command(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        result_topic = f"{self.base}/result"
        try:
            command = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._reject(topic, payload, "not JSON")
            return None  # no id to answer to
        if not isinstance(command, dict) or not isinstance(command.get("id"), str):
            self._reject(topic, payload, "no command id")
            return None
        command_id = command["id"]

        def reply(ok: bool, reason: str | None = None) -> tuple[str, bytes]:
            body: dict[str, Any] = {"schema": EVGW_SCHEMA_VERSION, "id": command_id, "ok": ok}
            if reason is not None:
                body["reason"] = reason
                self._reject(topic, payload, reason)
            return (result_topic, _json(body))

        if self.refuse_commands is not None:
            return reply(False, self.refuse_commands)
        error = self._validate(command)
        if error is not None:
            return reply(False, error)
        cp = self.charge_point
        if "current_a" in command:
            cp.set_setpoint(float(command["current_a"]))
        if "enabled" in command:
            cp.set_enabled(command["enabled"])
        if "phases" in command:
            cp.set_phases(command["phases"])
        if "watchdog_s" in command:
            cp.set_watchdog_timeout(float(command["watchdog_s"]))
            cp.set_failsafe_current(float(command.get("failsafe_current_a", 0.0)))
        cp.note_write()
        return reply(True)

    def _validate(self, command: dict[str, Any]) -> str | None:
        if command.get("schema") != EVGW_SCHEMA_VERSION:
            return f"unsupported schema {command.get('schema')!r}"

        def number(name: str) -> float | None:
            value = command.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            return float(value)

        try:
            current = number("current_a")
            watchdog = number("watchdog_s")
            failsafe = number("failsafe_current_a")
        except ValueError as exc:
            return str(exc)
        for amps in (current, failsafe):
            if amps is not None and not (
                amps == 0 or PILOT_MINIMUM_A <= amps <= self.max_current_a
            ):
                return f"current {amps} A outside 0 or {PILOT_MINIMUM_A}..{self.max_current_a}"
        if watchdog is not None and watchdog <= 0:
            return "watchdog_s must be positive"
        if "enabled" in command and not isinstance(command["enabled"], bool):
            return "enabled must be true or false"
        if "phases" in command and command["phases"] not in (1, 3):
            return "phases must be 1 or 3"
        return None

    def state_messages(self) -> list[tuple[str, bytes]]:
        cp = self.charge_point
        state = {
            "schema": EVGW_SCHEMA_VERSION,
            "cp_state": cp.cp_state.value,
            "enabled": cp.enabled,
            "setpoint_a": cp.setpoint_a,
            "currents_a": [round(i, 3) for i in cp.phase_currents_a],
            "voltages_v": [NOMINAL_VOLTAGE_V] * 3,
            "power_w": round(cp.power_w, 1),
            "energy_wh": round(cp.energy_wh, 3),
            "rfid": self._rfid(),
            "error_code": cp.error_code,
            "phases": cp.phases,
        }
        return [(f"{self.base}/state", _json(state))]
