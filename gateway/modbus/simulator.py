"""A simulated charger with an EV, served over real Modbus TCP (pymodbus server).

The simulator honours any profile: reads are encoded from the simulated state per the
profile's registers (and its request rules: a KEBA answers only one-value reads), writes to the
setpoint, enable, failsafe-current and watchdog registers change the state at once.

Physics is computed lazily from elapsed time (scaled by `speed`) whenever the state is looked
at, in sub-steps, so results depend only on the clock: tests can pass their own `clock`.

EV model: `plug_in()` gives state B1 until the charger is enabled with a setpoint >= 6 A; then
C2, the current following min(setpoint, EV maximum) with a first-order lag; the EV tapers over
the last tenth of its energy and, when full, goes to B2. `unplug()` gives A. Energy integrates
230 V per phase. Faults on demand give F with a vendor error code. If the watchdog timeout is
set and nothing is written within it, the setpoint falls back to the failsafe current.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from gateway.core.charger import CpState
from gateway.modbus.profile import (
    ChargerProfile,
    PauseMode,
    RegisterSpec,
    RegisterTable,
    load_profile,
)
from gateway.modbus.registers import RegisterType, RegisterValue, decode_value, encode_value

log = logging.getLogger(__name__)

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage of the simulated supply (the brief: 230 V per phase)."""
CURRENT_LAG_TIME_CONSTANT_S = 10.0
"""Time constant of the EV's current following the offer (the brief: ~10 s)."""
PILOT_MINIMUM_A = 6.0
"""Below 6 A the pilot offers nothing (chargers.md §1)."""
TAPER_FRACTION = 0.1
"""The EV tapers its current over the last tenth of the energy it needs."""
TAPER_FLOOR = 0.1
"""Fraction of its maximum an EV still draws at the very end, so a session ends in finite time."""
PHYSICS_STEP_S = 0.5
"""Longest simulated time step; lag and energy are integrated at this granularity."""

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
class SimulatedEv:
    """The vehicle plugged into a simulated charger."""

    rfid: str | None
    energy_needed_wh: float
    max_current_a: float
    phases: int
    delivered_wh: float = 0.0

    @property
    def full(self) -> bool:
        return self.delivered_wh >= self.energy_needed_wh

    def demand_a(self) -> float:
        """The current this EV would draw now if offered enough (tapering near full)."""
        remaining = self.energy_needed_wh - self.delivered_wh
        if remaining <= 0:
            return 0.0
        window = TAPER_FRACTION * self.energy_needed_wh
        factor = min(1.0, max(TAPER_FLOOR, remaining / window)) if window > 0 else 1.0
        return self.max_current_a * factor


@dataclass
class _Registers:
    """Raw words of registers the simulator only stores (written, not modelled)."""

    stored: dict[str, list[int]] = field(default_factory=dict)


class SimulatedCharger:
    """A charger of the given profile with an EV model; see the module docstring."""

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
        self.speed = speed
        self._clock = clock or time.monotonic
        self._clock_origin = self._clock()
        self._now_s = 0.0
        # Charger state as the gateway sets it. A charger starts enabled with no setpoint.
        self._setpoint_a = 0.0
        self._enabled = True
        self._failsafe_current_a = 0.0
        self._watchdog_timeout_s = 0.0
        self._last_write_s = 0.0
        self.watchdog_tripped = False
        # Physical state.
        self.ev: SimulatedEv | None = None
        self._current_a = 0.0
        self._energy_wh = 0.0
        self._fault_code = 0
        self._raw = _Registers()
        self.writes: list[SimulatedWrite] = []
        self.forced_exception: int | None = None
        """If set, every request is answered with this Modbus exception code."""
        self.response_delay_s = 0.0
        """Delay before every answer (real seconds), to provoke timeouts."""
        self._server: SimulatorServer | None = None

    # ---------------------------------------------------------------- observable state

    @property
    def now_s(self) -> float:
        """Simulated seconds since creation."""
        self.advance()
        return self._now_s

    @property
    def setpoint_a(self) -> float:
        """The maximum current last set (or the failsafe current after the watchdog fired)."""
        self.advance()
        return self._setpoint_a

    @property
    def enabled(self) -> bool:
        self.advance()
        return self._enabled

    @property
    def failsafe_current_a(self) -> float:
        return self._failsafe_current_a

    @property
    def watchdog_timeout_s(self) -> float:
        return self._watchdog_timeout_s

    @property
    def offered_a(self) -> float:
        """The current the pilot offers now (0 when disabled, faulted or below 6 A)."""
        self.advance()
        return self._offered_a()

    @property
    def current_a(self) -> float:
        """Current drawn per used phase."""
        self.advance()
        return self._current_a

    @property
    def phase_currents_a(self) -> tuple[float, float, float]:
        self.advance()
        return self._phase_currents()

    @property
    def power_w(self) -> float:
        self.advance()
        return sum(self._phase_currents()) * NOMINAL_VOLTAGE_V

    @property
    def energy_wh(self) -> float:
        """Lifetime energy delivered."""
        self.advance()
        return self._energy_wh

    @property
    def error_code(self) -> int:
        return self._fault_code

    @property
    def cp_state(self) -> CpState:
        self.advance()
        return self._cp_state()

    # ---------------------------------------------------------------- scenario controls

    def plug_in(
        self,
        rfid: str | None = None,
        energy_needed_wh: float = 20_000.0,
        max_current_a: float = 16.0,
        phases: int = 3,
    ) -> None:
        """Connect an EV that wants `energy_needed_wh`, draws at most `max_current_a` per
        phase on `phases` phases and presents `rfid` (if any) at the charger's reader."""
        if phases not in (1, 3):
            raise ValueError("an EV charges on 1 or 3 phases")
        if rfid is not None:
            self._check_rfid(rfid)
        self.advance()
        self.ev = SimulatedEv(rfid, energy_needed_wh, max_current_a, phases)

    def unplug(self) -> None:
        self.advance()
        self.ev = None
        self._current_a = 0.0

    def inject_fault(self, error_code: int = 1) -> None:
        """Put the charger in state F with the vendor `error_code` until `clear_fault()`."""
        if error_code <= 0:
            raise ValueError("a fault needs a non-zero error code")
        self.advance()
        self._fault_code = error_code
        self._current_a = 0.0

    def clear_fault(self) -> None:
        self.advance()
        self._fault_code = 0

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

    def advance(self) -> None:
        """Bring the physics up to the clock."""
        target_s = (self._clock() - self._clock_origin) * self.speed
        while self._now_s < target_s:
            step = min(PHYSICS_STEP_S, target_s - self._now_s)
            self._step(step)
            self._now_s += step

    # ---------------------------------------------------------------- server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve this charger alone on host:port (0 = an ephemeral port); returns the port."""
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

    # ---------------------------------------------------------------- physics

    def _offered_a(self) -> float:
        if self._fault_code or not self._enabled or self._setpoint_a < PILOT_MINIMUM_A:
            return 0.0
        return self._setpoint_a

    def _cp_state(self) -> CpState:
        if self._fault_code:
            return CpState.F
        if self.ev is None:
            return CpState.A
        offered = self._offered_a()
        if self.ev.full:
            return CpState.B2 if offered > 0 else CpState.B1
        return CpState.C2 if offered > 0 else CpState.B1

    def _phase_currents(self) -> tuple[float, float, float]:
        if self.ev is None:
            return (0.0, 0.0, 0.0)
        if self.ev.phases == 1:
            return (self._current_a, 0.0, 0.0)
        return (self._current_a, self._current_a, self._current_a)

    def _step(self, dt_s: float) -> None:
        at_s = self._now_s + dt_s
        if (
            self._watchdog_timeout_s > 0
            and not self.watchdog_tripped
            and at_s - self._last_write_s >= self._watchdog_timeout_s
        ):
            self.watchdog_tripped = True
            self._setpoint_a = self._failsafe_current_a
            log.info(
                "simulated watchdog fired",
                extra={"unit_id": self.unit_id, "failsafe_a": self._failsafe_current_a},
            )
        ev = self.ev
        if ev is None or self._cp_state() is not CpState.C2:
            # Leaving C2 (pause, full, fault) stops the current at once.
            self._current_a = 0.0
            return
        target = min(self._offered_a(), ev.demand_a())
        self._current_a += (target - self._current_a) * (
            1.0 - math.exp(-dt_s / CURRENT_LAG_TIME_CONSTANT_S)
        )
        energy = sum(self._phase_currents()) * NOMINAL_VOLTAGE_V * dt_s / 3600.0
        energy = min(energy, ev.energy_needed_wh - ev.delivered_wh)
        ev.delivered_wh += energy
        self._energy_wh += energy

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
        encodings = self.profile.state.encode
        for candidate in (state, *_STATE_FALLBACKS.get(state, ())):
            if candidate in encodings:
                values: dict[str, RegisterValue] = dict(encodings[candidate])
                break
        else:  # pragma: no cover - load_profile guarantees A, B1, C2 and F
            raise RuntimeError(f"{self.profile.name} cannot encode {state}")
        currents = self._phase_currents()
        power = sum(currents) * NOMINAL_VOLTAGE_V
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
                "energy": self._energy_wh,
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
            spec.address: spec for spec in self.profile.registers.values() if spec.table is table
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
        self._last_write_s = self._now_s
        self.watchdog_tripped = False
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
        return True

    def _apply(self, spec: RegisterSpec, words: list[int], value: RegisterValue) -> None:
        profile = self.profile
        number = 0.0 if isinstance(value, str) else float(value)
        if spec.name == profile.current.register:
            self._setpoint_a = number
        elif profile.enable and spec.name == profile.enable.register:
            self._enabled = number == profile.enable.on_value
        elif profile.failsafe_current and spec.name == profile.failsafe_current.register:
            self._failsafe_current_a = number
        elif profile.watchdog and spec.name == profile.watchdog.register:
            self._watchdog_timeout_s = number
        else:
            self._raw.stored[spec.name] = words


class _SimulatorContext(ModbusServerContext):
    """Routes pymodbus datastore calls to the simulated chargers by unit id, so every read
    is computed from the live state and every write takes effect at once."""

    def __init__(self, chargers: dict[int, SimulatedCharger]) -> None:
        # The base initializer wraps static data blocks, which this context has none of.
        self._chargers = chargers
        self.old_simulator = True  # tells ModbusBaseServer to call this context directly
        self.simdevices = []

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        return await self._charger(device_id).handle_read(func_code, address, count)

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        if func_code not in _WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        return await self._charger(device_id).handle_write(address, [int(v) for v in values])

    def device_ids(self) -> list[int]:
        return list(self._chargers)

    def _charger(self, device_id: int) -> SimulatedCharger:
        charger = self._chargers.get(device_id)
        if charger is None:
            # pymodbus answers this with exception 11 (gateway target failed to respond).
            raise NoSuchIdException(f"no simulated charger with unit id {device_id}")
        return charger


class SimulatorServer:
    """A Modbus TCP server hosting one or more simulated chargers, one per unit id (as a
    Modbus TCP gateway in front of several chargers would)."""

    def __init__(self, chargers: Iterable[SimulatedCharger]) -> None:
        self.chargers: dict[int, SimulatedCharger] = {}
        for charger in chargers:
            if charger.unit_id in self.chargers:
                raise ValueError(f"two simulated chargers with unit id {charger.unit_id}")
            self.chargers[charger.unit_id] = charger
        self._server: ModbusTcpServer | None = None
        self.port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = an ephemeral port) and return the bound port."""
        if self._server is not None:
            raise RuntimeError("simulator already running")
        server = ModbusTcpServer(_SimulatorContext(self.chargers), address=(host, port))
        await server.serve_forever(background=True)
        self._server = server
        # A TCP listener is an asyncio.Server, or uvloop's own Server class under uvloop:
        # both have `sockets`, so check for that rather than for a class.
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            raise RuntimeError(f"modbus simulator could not listen on {host}:{port}")
        self.port = int(sockets[0].getsockname()[1])
        log.info("modbus simulator listening", extra={"host": host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
