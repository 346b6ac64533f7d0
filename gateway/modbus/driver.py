"""A charger on a Modbus link, driven by its profile."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from gateway._core import RegisterLayout
from gateway.core.charger import ChargerReading, ChargerUnavailable, round_down_to_resolution
from gateway.modbus.link import ModbusLink, ModbusLinkError
from gateway.modbus.profile import (
    ChargerProfile,
    Confidence,
    CurrentWrite,
    EnergyCounter,
    PauseMode,
    ReadRequest,
    RegisterSpec,
    WatchdogRefresh,
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

    The profile's start-up writes (`initialize()`) go out before the first request and again
    after any failed request (the charger may have rebooted: Heidelberg's standby must be off
    for Modbus to keep working), together with the failsafe last programmed. A profile with a
    `[writes.keep_alive]` (Alfen: the setpoint is valid for a time set in the app) gets its
    setpoint rewritten from `read()` once `interval_s` has passed since the last write, on the
    driver's `clock`, so a polled charger keeps the gateway's setpoint and one the gateway has
    stopped polling falls back to its safe current.
    """

    def __init__(
        self,
        link: ModbusLink,
        unit_id: int | None,
        profile: ChargerProfile,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.unit_id = profile.default_unit_id if unit_id is None else unit_id
        self.profile = profile
        self.name = name or f"{profile.name}@{link.endpoint}/{self.unit_id}"
        self._clock = clock
        self._read_plan = profile.plan_reads(profile.reading_registers)
        # Compiled decoders per planned request, built on first use.
        self._layouts: dict[ReadRequest, RegisterLayout] = {}
        self._last_rfid = ""
        # What the gateway last commanded, for chargers that cannot report it back.
        self._enabled = True
        self._setpoint_a = 0.0
        self._paused = False
        self._watchdog_timeout_s = 0
        self._failsafe: tuple[float, int] | None = None
        self._setpoint_written_at: float | None = None
        self._initialized = False
        # A per-session energy register, added up into a growing counter.
        self._energy_base_wh = 0.0
        self._last_session_wh = 0.0
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

    async def initialize(self) -> None:
        """Write what the model needs once per connection or after a reboot: the profile's
        start-up writes (Heidelberg: standby off, remote lock open) and the failsafe last
        programmed with `configure_failsafe` (Heidelberg's 262 is 0 after power-up).
        Idempotent: every write sets an absolute value. Called by the other methods before
        their first request and after a failed one; call it directly after a known reboot."""
        for write in self.profile.startup:
            spec = self.profile.registers[write.register]
            raw = write.value / spec.scale
            value: float = round(raw) if spec.type.is_integer else raw
            await self._write(spec, encode_value(value, spec.type, spec.word_order))
        if self._failsafe is not None:
            await self._program_failsafe(*self._failsafe)
        self._initialized = True

    @property
    def keep_alive_interval_s(self) -> float | None:
        """How often the charger's watchdog needs a refresh, None when it has none: the
        profile's keep-alive period, or half the programmed watchdog timeout (evcc/KEBA)."""
        if self.profile.keep_alive is not None:
            return self.profile.keep_alive.interval_s
        if self._watchdog_timeout_s > 0:
            return self._watchdog_timeout_s / 2
        return None

    async def read(self) -> ChargerReading:
        """Poll the charger once.

        `rfid` is set only on the reading where the charger's tag changes from none (or
        another tag) to a tag, so a tag presented once is reported once.
        """
        await self._ensure_initialized()
        keep_alive = self.profile.keep_alive
        if (
            keep_alive is not None
            and self._setpoint_written_at is not None
            and self._clock() - self._setpoint_written_at >= keep_alive.interval_s
        ):
            await self.refresh_watchdog()
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
        await self._ensure_initialized()
        if amps == 0 and write.pause is PauseMode.DISABLE:
            await self._write_enable(False)
            self._paused = True
            self._setpoint_a = 0.0
            return
        if self.profile.enable is None and not self._enabled:
            # Disabled through the setpoint: keep it at 0 and remember the new limit for
            # set_enabled(True).
            await self._write_setpoint(0.0)
            self._setpoint_a = round_down_to_resolution(amps, write.resolution_a)
            return
        await self._write_setpoint(amps)
        self._setpoint_a = round_down_to_resolution(amps, write.resolution_a)
        if write.pause is PauseMode.DISABLE and self._enabled:
            # Re-enable after a pause; this also re-arms a KEBA after its failsafe has fired,
            # which needs the current and the enable set again (chargers.md §3).
            await self._write_enable(True)
        self._paused = False

    async def set_enabled(self, enabled: bool) -> None:
        """Enable or disable charging. A profile without an enable register pauses through
        the setpoint instead (0 A) and restores the last setpoint on enable."""
        await self._ensure_initialized()
        self._enabled = enabled
        if self.profile.enable is None:
            await self._write_setpoint(self._setpoint_a if enabled else 0.0)
            return
        await self._write_enable(enabled and not self._paused)

    async def set_phases(self, phases: int) -> None:
        """Switch the charger to 1 or 3 phases (1p/3p switching). Raises
        `NotImplementedError` when the profile has no `[writes.phases]`."""
        write = self.profile.phases
        if write is None:
            raise NotImplementedError(
                f"{self.name}: profile {self.profile.name!r} has no 1p/3p phase switching "
                "([writes.phases])"
            )
        if phases not in (1, 3):
            raise ValueError(f"{self.name}: {phases} phases: a charger switches 1 or 3")
        await self._ensure_initialized()
        spec = self.profile.registers[write.register]
        await self._write(spec, encode_value(write.value(phases), spec.type, spec.word_order))

    async def read_phases(self) -> int | None:
        """The phases in force (1 or 3) from the profile's readback register; None when the
        profile has none. Raises `RegisterDecodeError` for a value that means neither."""
        write = self.profile.phases
        if write is None or write.readback is None:
            return None
        await self._ensure_initialized()
        value = (await self.read_values([write.readback]))[write.readback]
        phases = write.phases(int(value)) if not isinstance(value, str) else None
        if phases is None:
            raise RegisterDecodeError(
                f"{self.name}: {write.readback} = {value!r} is neither "
                f"{write.one_phase} (1 phase) nor {write.three_phases} (3 phases)"
            )
        return phases

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
        await self._ensure_initialized()
        await self._program_failsafe(current_a, timeout_s)
        self._failsafe = (current_a, timeout_s)

    async def _program_failsafe(self, current_a: float, timeout_s: int) -> None:
        failsafe = self.profile.failsafe_current
        assert failsafe is not None
        failsafe_spec = self.profile.registers[failsafe.register]
        await self._write(failsafe_spec, raw_setpoint(failsafe, failsafe_spec, current_a))
        await self._write_watchdog(timeout_s)
        self._watchdog_timeout_s = timeout_s

    async def refresh_watchdog(self) -> None:
        """Keep the charger's watchdog from expiring; call well inside the timeout (every
        `keep_alive_interval_s`: timeout/2 for KEBA per evcc, 25 s for Alfen, chargers.md §5).
        Rewrites the timeout register or the setpoint in force, as the profile says."""
        watchdog = self.profile.watchdog
        keep_alive = self.profile.keep_alive
        if watchdog is not None and watchdog.refresh is WatchdogRefresh.TIMEOUT:
            await self._ensure_initialized()
            await self._write_watchdog(self._watchdog_timeout_s)
        elif watchdog is not None or keep_alive is not None:
            await self._ensure_initialized()
            if self.profile.current.pause is PauseMode.DISABLE and self._paused:
                await self._write_enable(False)
            else:
                await self._write_setpoint(self._in_force_a())

    def _in_force_a(self) -> float:
        """The setpoint the charger should hold now, as far as the setpoint register goes."""
        if self._paused or (self.profile.enable is None and not self._enabled):
            return 0.0
        return self._setpoint_a

    async def _write_setpoint(self, amps: float) -> None:
        write = self.profile.current
        spec = self.profile.registers[write.register]
        await self._write(spec, raw_setpoint(write, spec, amps))
        self._setpoint_written_at = self._clock()

    async def _ensure_initialized(self) -> None:
        if not self._initialized:
            await self.initialize()

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
        unit_id = self.unit_id if spec.unit_id is None else spec.unit_id
        try:
            await self.link.write_registers(unit_id, spec.address, words)
        except ModbusLinkError as exc:
            self._initialized = False
            raise ChargerUnavailable(f"{self.name}: {spec.name}: {exc}") from exc
        log.debug(
            "modbus write",
            extra={"charger": self.name, "register": spec.name, "words": words},
        )

    async def _read(self, plan: Iterable[ReadRequest]) -> dict[str, RegisterValue]:
        values: dict[str, RegisterValue] = {}
        for request in plan:
            names = ", ".join(spec.name for spec in request.registers)
            unit_id = self.unit_id if request.unit_id is None else request.unit_id
            try:
                words = await self.link.read_registers(
                    unit_id, request.table, request.address, request.count
                )
            except ModbusLinkError as exc:
                self._initialized = False
                raise ChargerUnavailable(f"{self.name}: {names}: {exc}") from exc
            layout = self._layouts.get(request)
            if layout is None:
                layout = self._layouts[request] = request.layout()
            try:
                values.update(request.decode(words, layout))
            except RegisterDecodeError as exc:
                raise RegisterDecodeError(f"{self.name}: {exc}") from exc
        return values

    def _reading(self, values: Mapping[str, RegisterValue]) -> ChargerReading:
        state = self.profile.state
        state_values = {name: state.value(name, values[name]) for name in state.registers}
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
        energy = number("energy")
        if self.profile.registers["energy"].counter is EnergyCounter.SESSION:
            if energy < self._last_session_wh:
                # A new session restarted the counter: bank the last one's total.
                self._energy_base_wh += self._last_session_wh
            self._last_session_wh = energy
            energy += self._energy_base_wh
        error_code = int(number("error_code"))
        return ChargerReading(
            cp_state=cp_state,
            enabled=enabled,
            current_a=(number("current_l1"), number("current_l2"), number("current_l3")),
            voltage_v=(number("voltage_l1"), number("voltage_l2"), number("voltage_l3")),
            power_w=number("power"),
            energy_wh=energy,
            setpoint_a=setpoint,
            rfid=rfid,
            error_code=error_code,
            ocpp_error_code=self.profile.ocpp_error_code(error_code, cp_state),
        )
