"""A charger on a Modbus TCP link, driven by its profile."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

from gateway.core.charger import ChargerReading, ChargerUnavailable
from gateway.modbus.link import ModbusLinkError, ModbusTcpLink
from gateway.modbus.profile import (
    ChargerProfile,
    Confidence,
    CurrentWrite,
    PauseMode,
    ReadRequest,
    RegisterSpec,
    WatchdogRefresh,
    round_down_to_resolution,
)
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterValue,
    decode_value,
    encode_value,
)

log = logging.getLogger(__name__)

PILOT_MINIMUM_A = 6.0
"""The lowest current the control pilot can offer (chargers.md §1): never command 0-6 A."""


def scaled_value(spec: RegisterSpec, words: Sequence[int]) -> RegisterValue:
    """Decode one register's raw words into its engineering value (raw x scale, or a string).

    Raises `RegisterDecodeError` for garbage (bad string, non-finite float)."""
    raw = decode_value(words, spec.type, spec.word_order)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, float) and not math.isfinite(raw):
        raise RegisterDecodeError(f"{spec.name}: value {raw} is not a finite number")
    if spec.format == "hex":
        return f"{int(raw):0{spec.count * 4}x}" if raw else ""
    if spec.scale == 1.0:
        return raw
    return raw * spec.scale


def raw_setpoint(write: CurrentWrite, spec: RegisterSpec, amps: float) -> list[int]:
    """Registers for a current of `amps`, rounded down to the write's resolution."""
    rounded = round_down_to_resolution(amps, write.resolution_a)
    if spec.type.is_integer:
        # `rounded` is a multiple of the resolution, itself a multiple of the scale (checked at
        # load), so this division is exact up to float noise, which round() removes.
        return encode_value(round(rounded / spec.scale), spec.type, spec.word_order)
    return encode_value(rounded / spec.scale, spec.type, spec.word_order)


class ModbusCharger:
    """One charger, addressed by `unit_id` on `link`, described by `profile`.

    Implements `ChargerControl`. Every method raises `ChargerUnavailable` (with the device, unit,
    registers and what happened) when the charger cannot be reached, answers with a Modbus
    exception or answers with garbage; `ValueError` for a command the charger must not get.
    """

    def __init__(
        self,
        link: ModbusTcpLink,
        unit_id: int | None,
        profile: ChargerProfile,
        *,
        name: str | None = None,
    ) -> None:
        self.link = link
        self.unit_id = profile.default_unit_id if unit_id is None else unit_id
        self.profile = profile
        self.name = name or f"{profile.name}@{link.endpoint}/{self.unit_id}"
        self._read_plan = profile.plan_reads(profile.reading_registers)
        self._last_rfid = ""
        # What the gateway last commanded, for chargers that cannot report it back.
        self._enabled = True
        self._setpoint_a = 0.0
        self._paused = False
        self._watchdog_timeout_s = 0
        self._warned_unverified: set[str] = set()

    def __repr__(self) -> str:
        return f"ModbusCharger({self.name})"

    async def read_values(self, names: Iterable[str] | None = None) -> dict[str, RegisterValue]:
        """Read and decode registers by name (default: all readable ones), per the request
        rules of the profile."""
        if names is None:
            specs = [spec for spec in self.profile.registers.values() if spec.access.readable]
        else:
            specs = []
            for name in names:
                spec = self.profile.registers.get(name)
                if spec is None or not spec.access.readable:
                    raise KeyError(f"{self.profile.name}: no readable register {name!r}")
                specs.append(spec)
        return await self._read(self.profile.plan_reads(specs))

    async def read(self) -> ChargerReading:
        """Poll the charger once.

        `rfid` is set only on the reading where the charger's tag changes from none (or
        another tag) to a tag, so a tag presented once is reported once.
        """
        values = await self._read(self._read_plan)
        try:
            reading = self._reading(values)
        except (TypeError, ValueError) as exc:
            raise RegisterDecodeError(f"{self.name}: {exc}") from exc
        return reading

    async def set_current_limit(self, amps: float) -> None:
        """Allow the charger to offer at most `amps`, rounded down to its resolution and capped
        at the profile's maximum. 0 pauses; 0 < amps < 6 A is refused with `ValueError`
        (chargers.md §1: 6 A is the pilot's floor)."""
        write = self.profile.current
        if not math.isfinite(amps) or amps < 0:
            raise ValueError(f"{self.name}: current limit {amps} A is not a current")
        if 0 < amps < max(PILOT_MINIMUM_A, write.min_a):
            raise ValueError(
                f"{self.name}: {amps} A is below the {max(PILOT_MINIMUM_A, write.min_a)} A "
                "minimum; command 0 to pause"
            )
        if amps > write.max_a:
            log.warning(
                "current limit capped",
                extra={"charger": self.name, "asked_a": amps, "max_a": write.max_a},
            )
            amps = write.max_a
        spec = self.profile.registers[write.register]
        if amps == 0 and write.pause is PauseMode.DISABLE:
            await self._write_enable(False)
            self._paused = True
            self._setpoint_a = 0.0
            return
        await self._write(spec, raw_setpoint(write, spec, amps))
        self._setpoint_a = round_down_to_resolution(amps, write.resolution_a)
        if write.pause is PauseMode.DISABLE and self._enabled:
            # Re-enable after a pause; this also re-arms a KEBA after its failsafe has fired,
            # which needs the current and the enable set again (chargers.md §3).
            await self._write_enable(True)
        self._paused = False

    async def set_enabled(self, enabled: bool) -> None:
        """Enable or disable charging. A profile without an enable register pauses through
        the setpoint instead (0 A) and restores the last setpoint on enable."""
        self._enabled = enabled
        if self.profile.enable is None:
            spec = self.profile.registers[self.profile.current.register]
            amps = self._setpoint_a if enabled else 0.0
            await self._write(spec, raw_setpoint(self.profile.current, spec, amps))
            return
        await self._write_enable(enabled and not self._paused)

    async def configure_failsafe(self, current_a: float, timeout_s: int) -> None:
        """Program the watchdog: if the gateway writes nothing for `timeout_s` seconds the
        charger falls back to `current_a` (0 stops charging). `timeout_s` = 0 switches the
        watchdog off. Chargers.md §5: set the fallback to the charger's static safe share."""
        failsafe = self.profile.failsafe_current
        watchdog = self.profile.watchdog
        if failsafe is None or watchdog is None:
            raise NotImplementedError(f"{self.profile.name} has no failsafe/watchdog registers")
        if current_a != 0 and not failsafe.min_a <= current_a <= failsafe.max_a:
            raise ValueError(
                f"{self.name}: failsafe current {current_a} A outside 0 or "
                f"{failsafe.min_a}..{failsafe.max_a} A"
            )
        if timeout_s != 0 and not watchdog.min_s <= timeout_s <= watchdog.max_s:
            raise ValueError(
                f"{self.name}: watchdog timeout {timeout_s} s outside 0 or "
                f"{watchdog.min_s}..{watchdog.max_s} s"
            )
        failsafe_spec = self.profile.registers[failsafe.register]
        await self._write(failsafe_spec, raw_setpoint(failsafe, failsafe_spec, current_a))
        await self._write_watchdog(timeout_s)
        self._watchdog_timeout_s = timeout_s

    async def refresh_watchdog(self) -> None:
        """Keep the charger's watchdog from expiring; call well inside the timeout (every
        timeout/2 for KEBA per evcc, chargers.md §5)."""
        watchdog = self.profile.watchdog
        if watchdog is None:
            return
        if watchdog.refresh is WatchdogRefresh.TIMEOUT:
            await self._write_watchdog(self._watchdog_timeout_s)
        else:
            await self.set_current_limit(self._setpoint_a)

    async def _write_watchdog(self, timeout_s: int) -> None:
        assert self.profile.watchdog is not None
        spec = self.profile.registers[self.profile.watchdog.register]
        await self._write(
            spec, encode_value(round(timeout_s / spec.scale), spec.type, spec.word_order)
        )

    async def _write_enable(self, enabled: bool) -> None:
        enable = self.profile.enable
        assert enable is not None
        spec = self.profile.registers[enable.register]
        value = enable.on_value if enabled else enable.off_value
        await self._write(spec, encode_value(value, spec.type, spec.word_order))

    async def _write(self, spec: RegisterSpec, words: list[int]) -> None:
        if spec.confidence is Confidence.UNVERIFIED and spec.name not in self._warned_unverified:
            # The reference flags these [U]: check on hardware first (chargers.md, flags).
            self._warned_unverified.add(spec.name)
            log.warning(
                "writing an unverified register",
                extra={"charger": self.name, "register": spec.name, "address": spec.address},
            )
        try:
            await self.link.write_registers(self.unit_id, spec.address, words)
        except ModbusLinkError as exc:
            raise ChargerUnavailable(f"{self.name}: {spec.name}: {exc}") from exc
        log.debug(
            "modbus write",
            extra={"charger": self.name, "register": spec.name, "words": words},
        )

    async def _read(self, plan: Iterable[ReadRequest]) -> dict[str, RegisterValue]:
        values: dict[str, RegisterValue] = {}
        for request in plan:
            names = ", ".join(spec.name for spec in request.registers)
            try:
                words = await self.link.read_registers(
                    self.unit_id, request.table, request.address, request.count
                )
            except ModbusLinkError as exc:
                raise ChargerUnavailable(f"{self.name}: {names}: {exc}") from exc
            for spec in request.registers:
                offset = spec.address - request.address
                try:
                    values[spec.name] = scaled_value(spec, words[offset : offset + spec.count])
                except RegisterDecodeError as exc:
                    raise RegisterDecodeError(
                        f"{self.name}: {spec.name} ({spec.table.value} {spec.address}): {exc}"
                    ) from exc
        return values

    def _reading(self, values: Mapping[str, RegisterValue]) -> ChargerReading:
        state_values = {name: int(values[name]) for name in self.profile.state.registers}
        try:
            cp_state = self.profile.state.decode(state_values)
        except RegisterDecodeError as exc:
            raise RegisterDecodeError(f"{self.name}: {exc}") from exc

        def number(name: str, default: float = 0.0) -> float:
            value = values.get(name, default)
            if isinstance(value, str):
                raise TypeError(f"{name} is a string, expected a number")
            return float(value)

        enabled = bool(values["enabled"]) if "enabled" in values else self._enabled
        setpoint = (
            number("offered_current")
            if "offered_current" in values
            else (self._setpoint_a if self._enabled and not self._paused else 0.0)
        )
        tag = str(values.get("rfid", "") or "")
        rfid = tag if tag and tag != self._last_rfid else None
        self._last_rfid = tag
        return ChargerReading(
            cp_state=cp_state,
            enabled=enabled,
            current_a=(number("current_l1"), number("current_l2"), number("current_l3")),
            voltage_v=(number("voltage_l1"), number("voltage_l2"), number("voltage_l3")),
            power_w=number("power"),
            energy_wh=number("energy"),
            setpoint_a=setpoint,
            rfid=rfid,
            error_code=int(number("error_code")),
        )
