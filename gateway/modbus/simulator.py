"""A simulated charger served over real Modbus (pymodbus server), honouring any profile.

Reads are encoded from the simulated state (`gateway.simulation.SimulatedChargePoint`: the
EV, its lagging current, the watchdog) per the profile's registers and request rules (a KEBA
answers only one-value reads); writes to the setpoint, enable, failsafe-current and watchdog
registers change the state at once.

Per profile it also honours: string and bit-field state registers; registers on another unit
id (served only by a simulator whose own unit id that is, see `SimulatorServer` for several
unit ids); 1p/3p switching writes (`set_phases` on the physics) and their readback; start-up
writes (stored and readable back; forgotten by `reboot()`); a keep-alive profile's
charger-side timeout (Alfen: no setpoint write within the validity time -> the safe current
served by its readback register); a per-session energy register (ABB); and vendor fault codes
from `inject_fault(code)` in the profile's error-code register.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pymodbus.constants import ExcCodes

from gateway.core.charger import CpState
from gateway.modbus.profile import (
    ChargerProfile,
    EnergyCounter,
    PauseMode,
    RegisterSpec,
    RegisterTable,
    load_profile,
)
from gateway.modbus.registers import RegisterType, RegisterValue, decode_value, encode_value
from gateway.simulation import NOMINAL_VOLTAGE_V, SimulatedChargePoint, SimulatedEv

if TYPE_CHECKING:
    from gateway.modbus.simulator_server import SimulatorServer

log = logging.getLogger(__name__)

__all__ = [
    "NOMINAL_VOLTAGE_V",
    "SimulatedCharger",
    "SimulatedEv",
    "SimulatedWrite",
]

# States a profile may not encode, and the nearest state it can (shipped profiles all have
# A, B1, C2 and F, which load_profile requires).
_STATE_FALLBACKS: dict[CpState, tuple[CpState, ...]] = {
    CpState.B2: (CpState.B1,),
    CpState.C1: (CpState.B1,),
    CpState.D1: (CpState.C1, CpState.B1),
    CpState.D2: (CpState.C2,),
    CpState.E: (CpState.F,),
}
_READ_TABLES = {3: RegisterTable.HOLDING, 4: RegisterTable.INPUT}
_WRITE_FUNCTIONS = (6, 16)


@dataclass(frozen=True, slots=True)
class SimulatedWrite:
    """A write the simulator received (for tests to assert on)."""

    register: str
    address: int
    words: tuple[int, ...]
    value: RegisterValue
    at_s: float
    """Simulated time of the write, seconds since the simulator was created."""


@dataclass
class _Registers:
    """Raw words of registers the simulator only stores (written, not modelled)."""

    stored: dict[str, list[int]] = field(default_factory=dict)


class SimulatedCharger(SimulatedChargePoint):
    """A charger of the given profile with an EV model, as its Modbus register image."""

    def __init__(
        self,
        profile: ChargerProfile | str,
        *,
        unit_id: int | None = None,
        speed: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.unit_id = self.profile.default_unit_id if unit_id is None else unit_id
        super().__init__(name=f"{self.profile.name}/{self.unit_id}", speed=speed, clock=clock)
        self._raw = _Registers()
        self.writes: list[SimulatedWrite] = []
        self.forced_exception: int | None = None
        """If set, every request is answered with this Modbus exception code."""
        self.response_delay_s = 0.0
        """Delay before every answer (real seconds), to provoke timeouts."""
        self._server: SimulatorServer | None = None
        self._session_start_wh = 0.0
        self._failsafe_current_a = self._own_fallback_a()

    # ---------------------------------------------------------------- scenario controls

    def plug_in(
        self,
        rfid: str | None = None,
        energy_needed_wh: float = 20_000.0,
        max_current_a: float = 16.0,
        phases: int = 3,
    ) -> None:
        """As `SimulatedChargePoint.plug_in`; `rfid` must fit the profile's RFID register."""
        if rfid is not None:
            self._check_rfid(rfid)
        super().plug_in(rfid, energy_needed_wh, max_current_a, phases)
        self._session_start_wh = self._energy_wh

    def reboot(self) -> None:
        """As `SimulatedChargePoint.reboot` (setpoint, failsafe current and watchdog gone:
        Heidelberg's 261 and 262 start at 0), and start-up registers back at their power-up
        value, so the gateway must write them again (`ModbusCharger.initialize`). A charger's
        own fallback set outside the gateway (Alfen's safe current) persists."""
        super().reboot()
        self._failsafe_current_a = self._own_fallback_a()
        for write in self.profile.startup:
            self._raw.stored.pop(write.register, None)

    def _own_fallback_a(self) -> float:
        keep_alive = self.profile.keep_alive
        if keep_alive is None or keep_alive.fallback_current is None:
            return 0.0
        # Alfen's safe current is set in the app: the simulator serves the register's
        # sim_value, or 0 (stop) without one.
        fallback = self.profile.registers[keep_alive.fallback_current].sim_value
        return float(fallback) if isinstance(fallback, int | float) else 0.0

    def force_register(self, name: str, words: Sequence[int] | None) -> None:
        """Serve fixed raw `words` for register `name` (garbage, unknown state codes) until
        called again with None."""
        spec = self.profile.registers[name]
        if words is None:
            self._raw.stored.pop(name, None)
            return
        if len(words) != spec.count:
            raise ValueError(f"{name} takes {spec.count} registers")
        self._raw.stored[name] = list(words)

    # ---------------------------------------------------------------- server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve this charger alone on host:port (0 = an ephemeral port); returns the port."""
        # Imported here: the server module imports this one.
        from gateway.modbus.simulator_server import SimulatorServer

        self._server = SimulatorServer([self])
        return await self._server.start(host, port)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    @property
    def port(self) -> int | None:
        """The port this charger's own server listens on, None when stopped."""
        return self._server.port if self._server is not None else None

    # ---------------------------------------------------------------- register image

    def _check_rfid(self, rfid: str) -> None:
        spec = self.profile.registers.get("rfid")
        if spec is None:
            return
        if spec.format == "hex":
            try:
                value = int(rfid, 16)
            except ValueError as exc:
                raise ValueError(f"{self.profile.name} reports RFID tags as hex") from exc
            encode_value(value, spec.type, spec.word_order)
        else:
            encode_value(rfid, spec.type, spec.word_order, spec.count)

    def _role_values(self) -> dict[str, RegisterValue]:
        """Engineering values of every modelled register, from the current state."""
        state = self._cp_state()
        mapping = self.profile.state
        encodings = mapping.encode
        for candidate in (state, *_STATE_FALLBACKS.get(state, ())):
            if candidate in encodings:
                values: dict[str, RegisterValue] = {
                    name: mapping.register_value(name, value)
                    for name, value in encodings[candidate].items()
                }
                break
        else:  # pragma: no cover - load_profile guarantees A, B1, C2 and F
            raise RuntimeError(f"{self.profile.name} cannot encode {state}")
        currents = self._phase_currents()
        power = sum(currents) * NOMINAL_VOLTAGE_V
        energy = self._energy_wh
        if self.profile.registers["energy"].counter is EnergyCounter.SESSION:
            energy -= self._session_start_wh
        rfid = self.ev.rfid if self.ev is not None and self.ev.rfid else ""
        values.update(
            {
                "current_l1": currents[0],
                "current_l2": currents[1],
                "current_l3": currents[2],
                "voltage_l1": NOMINAL_VOLTAGE_V,
                "voltage_l2": NOMINAL_VOLTAGE_V,
                "voltage_l3": NOMINAL_VOLTAGE_V,
                "power": power,
                "energy": energy,
                "offered_current": self._offered_a(),
                "enabled": 1 if self._enabled else 0,
                "rfid": rfid,
                "error_code": self._fault_code,
            }
        )
        profile = self.profile
        values[profile.current.register] = self._setpoint_a
        if profile.enable is not None:
            on, off = profile.enable.on_value, profile.enable.off_value
            values[profile.enable.register] = on if self._enabled else off
        if profile.failsafe_current is not None:
            values[profile.failsafe_current.register] = self._failsafe_current_a
        if profile.watchdog is not None:
            values[profile.watchdog.register] = self._watchdog_timeout_s
        if profile.keep_alive is not None and profile.keep_alive.fallback_current is not None:
            values[profile.keep_alive.fallback_current] = self._failsafe_current_a
        if profile.phases is not None:
            in_force = profile.phases.value(self._phases)
            values[profile.phases.register] = in_force
            if profile.phases.readback is not None:
                values[profile.phases.readback] = in_force
        return values

    def _encode(self, spec: RegisterSpec, value: RegisterValue | None) -> list[int]:
        if spec.name in self._raw.stored:
            return list(self._raw.stored[spec.name])
        if value is None:
            value = spec.sim_value if spec.sim_value is not None else ""
        if spec.type is RegisterType.STRING:
            return encode_value(str(value), spec.type, spec.word_order, spec.count)
        if spec.format == "hex":
            value = int(str(value), 16) if value else 0
        if isinstance(value, str):
            value = 0
        raw = value / spec.scale
        if spec.type.is_integer:
            bits = 16 * spec.count
            signed = spec.type.value.startswith("i")
            low = -(2 ** (bits - 1)) if signed else 0
            high = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
            return encode_value(min(high, max(low, round(raw))), spec.type, spec.word_order)
        return encode_value(float(raw), spec.type, spec.word_order)

    def _specs_covering(
        self, table: RegisterTable, address: int, count: int
    ) -> list[RegisterSpec] | None:
        """The registers exactly covering address..address+count-1, or None if any address
        is unmapped or a value would be cut."""
        by_address = {
            spec.address: spec
            for spec in self.profile.registers.values()
            if spec.table is table and (spec.unit_id is None or spec.unit_id == self.unit_id)
        }
        specs: list[RegisterSpec] = []
        at = address
        while at < address + count:
            spec = by_address.get(at)
            if spec is None or spec.end > address + count:
                return None
            specs.append(spec)
            at = spec.end
        return specs

    async def handle_read(self, func_code: int, address: int, count: int) -> list[int] | ExcCodes:
        """Answer a read request (function code 3 or 4) from the simulated state."""
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if self.forced_exception is not None:
            return ExcCodes(self.forced_exception)
        if func_code in _WRITE_FUNCTIONS:
            # pymodbus reads the written register back to build a write response.
            table = RegisterTable.HOLDING
        elif func_code in _READ_TABLES:
            table = _READ_TABLES[func_code]
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        self.advance()
        specs = self._specs_covering(table, address, count)
        if specs is None:
            return ExcCodes.ILLEGAL_ADDRESS
        if func_code in _READ_TABLES:
            if any(not spec.access.readable for spec in specs):
                return ExcCodes.ILLEGAL_ADDRESS
            if self.profile.requests.one_value_per_read and len(specs) != 1:
                return ExcCodes.ILLEGAL_ADDRESS
        values = self._role_values()
        words: list[int] = []
        for spec in specs:
            words += self._encode(spec, values.get(spec.name))
        return words

    async def handle_write(self, address: int, words: Sequence[int]) -> ExcCodes | None:
        """Apply a write request to holding registers."""
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if self.forced_exception is not None:
            return ExcCodes(self.forced_exception)
        self.advance()
        specs = self._specs_covering(RegisterTable.HOLDING, address, len(words))
        if specs is None or any(not spec.access.writable for spec in specs):
            return ExcCodes.ILLEGAL_ADDRESS
        decoded: list[tuple[RegisterSpec, list[int], RegisterValue]] = []
        offset = 0
        for spec in specs:
            chunk = list(words[offset : offset + spec.count])
            offset += spec.count
            value = decode_value(chunk, spec.type, spec.word_order)
            if not isinstance(value, str):
                value = value * spec.scale
            if not self._acceptable(spec, value):
                return ExcCodes.ILLEGAL_VALUE
            decoded.append((spec, chunk, value))
        for spec, chunk, value in decoded:
            self._apply(spec, chunk, value)
            self.writes.append(
                SimulatedWrite(spec.name, spec.address, tuple(chunk), value, self._now_s)
            )
        self.note_write()
        return None

    def _acceptable(self, spec: RegisterSpec, value: RegisterValue) -> bool:
        """Range checks a real charger makes (e.g. KEBA 5004 takes 6000-63000 mA only)."""
        profile = self.profile
        if isinstance(value, str):
            return True
        if spec.name == profile.current.register:
            write = profile.current
            if value == 0:
                return write.pause is PauseMode.WRITE_ZERO
            if write.pause is PauseMode.WRITE_ZERO:
                return value <= write.max_a + 1e-9
            return write.min_a - 1e-9 <= value <= write.max_a + 1e-9
        if profile.failsafe_current and spec.name == profile.failsafe_current.register:
            write = profile.failsafe_current
            return value == 0 or write.min_a - 1e-9 <= value <= write.max_a + 1e-9
        if profile.watchdog and spec.name == profile.watchdog.register:
            return value == 0 or profile.watchdog.min_s <= value <= profile.watchdog.max_s
        if profile.enable and spec.name == profile.enable.register:
            return value in (profile.enable.on_value, profile.enable.off_value)
        if profile.phases and spec.name == profile.phases.register:
            return profile.phases.phases(int(value)) is not None
        return True

    def _apply(self, spec: RegisterSpec, words: list[int], value: RegisterValue) -> None:
        profile = self.profile
        number = 0.0 if isinstance(value, str) else float(value)
        if spec.name == profile.current.register:
            self._setpoint_a = number
            if profile.keep_alive is not None:
                # The validity time runs from the first setpoint (see the module docstring).
                self._watchdog_timeout_s = profile.keep_alive.charger_timeout_s
        elif profile.phases and spec.name == profile.phases.register:
            phases = profile.phases.phases(int(number))
            assert phases is not None  # _acceptable checked it
            self.set_phases(phases)
        elif profile.enable and spec.name == profile.enable.register:
            self._enabled = number == profile.enable.on_value
        elif profile.failsafe_current and spec.name == profile.failsafe_current.register:
            self._failsafe_current_a = number
        elif profile.watchdog and spec.name == profile.watchdog.register:
            self._watchdog_timeout_s = number
        else:
            self._raw.stored[spec.name] = words
