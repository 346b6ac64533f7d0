"""Modbus links: one shared connection per bus, for every unit id on that bus.

Three transports, one behaviour:

- `ModbusTcpLink`: Modbus TCP (MBAP framing) to a device or a TCP gateway (KEBA, Alfen).
- `ModbusRtuOverTcpLink`: Modbus RTU frames (CRC, no MBAP header) over a TCP socket, as a
  transparent serial-to-Ethernet converter in front of an RS-485 bus expects.
- `ModbusSerialLink`: Modbus RTU on a local serial port (an RS-485 adapter; Heidelberg,
  ABB Terra AC, Eastron meters).

Requests on a link are serialized: a Modbus RTU bus carries one request at a time by
definition (one master, each request answered before the next), and a TCP device or gateway
usually answers one at a time as well. Each request has its own timeout. When the connection
or port fails, the link waits with a capped exponential back-off before it tries again;
requests in the meantime fail at once instead of piling up. An optional minimum gap between
requests (`request_gap_s`) gives slow devices their silent interval.

Every failure is raised as a `ModbusLinkError` (a `ChargerUnavailable`) whose message names
the bus, the unit and the registers; nothing pymodbus or pyserial raises escapes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from gateway.core.charger import ChargerUnavailable
from gateway.modbus.profile import RegisterTable

log = logging.getLogger(__name__)

# Modbus application protocol §7: the standard exception codes.
EXCEPTION_CODE_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

DEFAULT_PORT = 502
"""Modbus TCP's registered port; KEBA and Alfen use it (chargers.md §3)."""

# After this many consecutive timeouts a TCP connection is treated as dead and rebuilt: a
# half-open TCP connection (unplugged cable) never reports an error by itself.
TIMEOUTS_BEFORE_RECONNECT = 3

# pymodbus drops a TCP connection by itself after a few requests without an answer. On an
# RTU-over-TCP bus a silent unit is no reason to drop the socket the other units answer on,
# so the link raises pymodbus' limit out of the way and applies its own rule.
_PYMODBUS_NO_LIMIT = 2**31

HEIDELBERG_REQUEST_GAP_S = 0.1
"""Pause between requests for a Heidelberg Energy Control: evcc waits 100 ms (chargers.md §3,
evcc #15437)."""

EASTRON_SDM_REQUEST_GAP_S = 0.1
"""Silent interval an Eastron SDM meter wants between requests: 0.1 s (chargers.md §3)."""


class ModbusLinkError(ChargerUnavailable):
    """A request on a link failed. The message says which bus, unit and registers."""


class ModbusExceptionResponse(ModbusLinkError):
    """The device answered with a Modbus exception response."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class ModbusTimeout(ModbusLinkError):
    """The device did not answer within the request timeout."""


class ModbusConnectionError(ModbusLinkError):
    """The connection (TCP socket or serial port) could not be made or broke."""


class ModbusFraming(StrEnum):
    """How Modbus frames travel on a TCP socket."""

    TCP = "tcp"
    """Modbus TCP: MBAP header with transaction id, no CRC."""
    RTU = "rtu"
    """Modbus RTU: unit id, PDU and CRC, as on the serial line (transparent converters)."""


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings of a serial Modbus RTU bus.

    The defaults are the Modbus over Serial Line specification's (v1.02): 19200 baud, 8 data
    bits, even parity, 1 stop bit. Devices often ship with other
    settings; every device on one bus must use the same.
    """

    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8

    def __post_init__(self) -> None:
        if self.baudrate <= 0:
            raise ValueError(f"baud rate {self.baudrate} is not positive")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity {self.parity!r} is not one of 'N', 'E', 'O'")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stop bits {self.stopbits} is not 1 or 2")
        if self.bytesize not in (7, 8):
            raise ValueError(f"byte size {self.bytesize} is not 7 or 8")

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    @property
    def character_time_s(self) -> float:
        """Time one character takes on the line: start bit, data, parity, stop bits."""
        bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return bits / self.baudrate

    @property
    def frame_gap_s(self) -> float:
        """The silence that must separate two RTU frames (t3.5): 3.5 character times, or a
        fixed 1.75 ms above 19200 baud (Modbus over serial line v1.02 §2.5.1.1)."""
        if self.baudrate > 19200:
            return 0.00175
        return 3.5 * self.character_time_s


_RequestCall = Callable[[ModbusBaseClient], Awaitable[Any]]


class ModbusLink(ABC):
    """A shared, serialized, self-healing Modbus connection to one bus.

    Promises, for every transport:

    - Requests run one at a time in arrival order (an `asyncio.Lock`); separate links run in
      parallel.
    - `request_timeout_s` bounds every request and every connection attempt.
    - At least `request_gap_s` passes between the end of one request (answer, timeout or
      error) and the start of the next; a serial link never goes below the line's t3.5
      silence (an RTU-over-TCP converter keeps the line timing itself).
    - After a failed connection the link waits `backoff_initial_s`, doubling per failure up
      to `backoff_max_s`; requests during the wait fail at once with
      `ModbusConnectionError`.
    - Failures are `ModbusExceptionResponse`, `ModbusTimeout`, `ModbusConnectionError` or
      (garbage) `ModbusLinkError`, with the bus, unit and registers in the message.
    """

    def __init__(
        self,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        request_gap_s: float = 0.0,
    ) -> None:
        if request_timeout_s <= 0:
            raise ValueError(f"request timeout {request_timeout_s} s is not positive")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError(
                f"back-off {backoff_initial_s}..{backoff_max_s} s is not 0 < initial <= max"
            )
        if request_gap_s < 0:
            raise ValueError(f"request gap {request_gap_s} s is negative")
        self.request_timeout_s = request_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.request_gap_s = request_gap_s
        """Minimum pause between two requests on this bus, seconds (may be raised later)."""
        self.connect_count = 0
        """Successful connections so far: stays 1 while the first connection holds."""
        self.requests = 0
        """Requests asked of this link so far (for the metrics), and of them those that
        timed out, got a Modbus exception response, or failed on the connection."""
        self.timeouts = 0
        self.exception_responses = 0
        self.connection_errors = 0
        self._lock = asyncio.Lock()
        self._client: ModbusBaseClient | None = None
        self._backoff_s = backoff_initial_s
        self._next_attempt_at = 0.0
        self._last_failure = ""
        self._last_request_end = float("-inf")
        # Unit ids of the current run of timeouts, in order; cleared by any answer.
        self._timeout_run: list[int] = []
        self._units_addressed: set[int] = set()
        self._closed = False

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """The bus in messages and logs: host:port, or the serial device path."""

    @property
    def connected(self) -> bool:
        """Whether the connection or port is open right now."""
        return self._client is not None and self._client.connected

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint}, connected={self.connected})"

    async def read_registers(
        self, unit_id: int, table: RegisterTable, address: int, count: int
    ) -> list[int]:
        """Read `count` registers from `address` of `table` on `unit_id`."""
        what = f"reading {table.value} {address}..{address + count - 1}"

        def call(client: ModbusBaseClient) -> Awaitable[Any]:
            if table is RegisterTable.INPUT:
                return client.read_input_registers(address, count=count, device_id=unit_id)
            return client.read_holding_registers(address, count=count, device_id=unit_id)

        response = await self._execute(unit_id, what, call)
        registers: list[int] = list(response.registers)
        if len(registers) != count:
            raise ModbusLinkError(
                f"{self.endpoint} unit {unit_id}: {what}: got {len(registers)} registers, "
                f"asked for {count}"
            )
        return registers

    async def write_registers(self, unit_id: int, address: int, values: Sequence[int]) -> None:
        """Write holding registers from `address`: function code 6 for one register (KEBA
        accepts only that, chargers.md §3), 16 for several in one request (Alfen needs that)."""
        what = f"writing holding {address} = {list(values)}"

        def call(client: ModbusBaseClient) -> Awaitable[Any]:
            if len(values) == 1:
                return client.write_register(address, values[0], device_id=unit_id)
            return client.write_registers(address, list(values), device_id=unit_id)

        await self._execute(unit_id, what, call)

    async def close(self) -> None:
        """Close the connection; later requests fail with `ModbusConnectionError`."""
        async with self._lock:
            self._closed = True
            self._drop_connection()

    # ---------------------------------------------------------------- transport specifics

    @abstractmethod
    def _new_client(self) -> ModbusBaseClient:
        """A pymodbus client for this bus, not yet connected, with pymodbus' own reconnect
        and retries switched off (this link owns both)."""

    @property
    def _minimum_gap_s(self) -> float:
        """A gap the transport itself needs between requests (RTU: t3.5)."""
        return 0.0

    def _connect_problem(self, exc: Exception) -> str:
        """How a failed connection attempt reads in the error message."""
        return f"cannot connect ({exc!r})"

    def _timeouts_mean_dead_connection(self) -> bool:
        """Whether the current run of timeouts (`self._timeout_run`) means the connection is
        dead and must be rebuilt, rather than a device being silent."""
        return len(self._timeout_run) >= TIMEOUTS_BEFORE_RECONNECT

    # ---------------------------------------------------------------- shared machinery

    async def _execute(self, unit_id: int, what: str, call: _RequestCall) -> Any:
        prefix = f"{self.endpoint} unit {unit_id}: {what}"
        self.requests += 1
        async with self._lock:
            client = await self._connected_client(prefix)
            await self._keep_gap()
            self._units_addressed.add(unit_id)
            try:
                # pymodbus applies its own timeout too; this one also covers a stuck send.
                async with asyncio.timeout(self.request_timeout_s * 1.5):
                    response = await call(client)
            except TimeoutError as exc:
                raise self._timed_out(prefix, unit_id) from exc
            except ModbusException as exc:
                # pymodbus reports both "no response" and "connection lost" this way.
                if client.connected:
                    raise self._timed_out(prefix, unit_id) from exc
                raise self._connection_failed(prefix, f"connection lost ({exc})") from exc
            except OSError as exc:  # also pyserial's SerialException
                raise self._connection_failed(prefix, f"connection failed ({exc})") from exc
            except Exception as exc:
                # pyserial raises undocumented exceptions (termios.error); keep the promise
                # that only ModbusLinkError leaves the link, and keep the trace in the log.
                log.warning("modbus request failed unexpectedly", exc_info=True)
                raise self._connection_failed(prefix, f"request failed ({exc!r})") from exc
            finally:
                self._last_request_end = asyncio.get_running_loop().time()
            self._timeout_run.clear()
            if response.isError():
                self.exception_responses += 1
                code = int(getattr(response, "exception_code", 0))
                name = EXCEPTION_CODE_NAMES.get(code, "unknown exception")
                raise ModbusExceptionResponse(f"{prefix}: Modbus exception {code} ({name})", code)
            return response

    async def _keep_gap(self) -> None:
        gap_s = max(self.request_gap_s, self._minimum_gap_s)
        if gap_s <= 0:
            return
        wait_s = self._last_request_end + gap_s - asyncio.get_running_loop().time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    async def _connected_client(self, prefix: str) -> ModbusBaseClient:
        if self._closed:
            raise ModbusConnectionError(f"{prefix}: link closed")
        if self._client is not None and self._client.connected:
            return self._client
        self._drop_connection()
        loop = asyncio.get_running_loop()
        wait_s = self._next_attempt_at - loop.time()
        if wait_s > 0:
            raise ModbusConnectionError(
                f"{prefix}: not connected, next attempt in {wait_s:.1f} s "
                f"(last failure: {self._last_failure})"
            )
        try:
            client = self._new_client()
        except Exception as exc:  # pymodbus refuses some parameters only here
            raise self._connection_failed(prefix, f"cannot connect ({exc!r})") from exc
        try:
            async with asyncio.timeout(self.request_timeout_s * 1.5):
                ok = await client.connect()
        except Exception as exc:
            # OSError, TimeoutError, ModbusException, and for serial ports whatever pyserial
            # raises while configuring the line (termios.error, ValueError).
            client.close()
            raise self._connection_failed(prefix, self._connect_problem(exc)) from exc
        if not ok:
            client.close()
            raise self._connection_failed(prefix, "cannot connect")
        self._client = client
        self.connect_count += 1
        self._backoff_s = self.backoff_initial_s
        self._timeout_run.clear()
        log.info("modbus link connected", extra={"endpoint": self.endpoint})
        return client

    def _timed_out(self, prefix: str, unit_id: int) -> ModbusTimeout:
        self.timeouts += 1
        self._timeout_run.append(unit_id)
        if self._timeouts_mean_dead_connection():
            log.warning(
                "modbus link reconnecting after timeouts",
                extra={"endpoint": self.endpoint, "units": sorted(set(self._timeout_run))},
            )
            self._timeout_run.clear()
            self._drop_connection()
        return ModbusTimeout(f"{prefix}: no response within {self.request_timeout_s} s")

    def _connection_failed(self, prefix: str, problem: str) -> ModbusConnectionError:
        self.connection_errors += 1
        self._drop_connection()
        loop = asyncio.get_running_loop()
        self._next_attempt_at = loop.time() + self._backoff_s
        self._last_failure = problem
        log.warning(
            "modbus link down",
            extra={"endpoint": self.endpoint, "problem": problem, "retry_in_s": self._backoff_s},
        )
        self._backoff_s = min(self._backoff_s * 2, self.backoff_max_s)
        return ModbusConnectionError(f"{prefix}: {problem}")

    def _drop_connection(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class _SocketLink(ModbusLink):
    """A link over a TCP socket to host:port."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        request_gap_s: float = 0.0,
    ) -> None:
        super().__init__(
            request_timeout_s=request_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            request_gap_s=request_gap_s,
        )
        self.host = host
        self.port = port


class ModbusTcpLink(_SocketLink):
    """Modbus TCP to host:port, shared by every unit id behind it (see `ModbusLink`).

    Three consecutive timeouts rebuild the connection: a half-open TCP connection never
    reports an error by itself.
    """

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def _new_client(self) -> ModbusBaseClient:
        # reconnect_delay=0 turns pymodbus' own reconnect loop off: this link owns the
        # back-off, so that requests during it fail fast and visibly. retries=0 for the same
        # reason: the poller's next cycle is the retry.
        return AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.request_timeout_s,
            retries=0,
            reconnect_delay=0,
            reconnect_delay_max=0,
        )


class ModbusRtuOverTcpLink(_SocketLink):
    """Modbus RTU frames over TCP to a serial-to-Ethernet converter at host:port, shared by
    every unit on the RS-485 bus behind it (see `ModbusLink`).

    The converter passes bytes through without answering for silent units, so a unit that
    does not answer costs one timeout for that request and leaves the socket alone. The
    socket is rebuilt only when three consecutive timeouts involve more than one unit (the
    whole bus went quiet: likely a half-open connection), or when this link has only ever
    addressed one unit (then the two cases cannot be told apart, as with `ModbusTcpLink`).
    """

    @property
    def endpoint(self) -> str:
        return f"rtu+tcp://{self.host}:{self.port}"

    def _new_client(self) -> ModbusBaseClient:
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            framer=FramerType.RTU,
            timeout=self.request_timeout_s,
            retries=0,
            reconnect_delay=0,
            reconnect_delay_max=0,
        )
        client.set_max_no_responses(_PYMODBUS_NO_LIMIT)
        return client

    def _timeouts_mean_dead_connection(self) -> bool:
        if len(self._timeout_run) < TIMEOUTS_BEFORE_RECONNECT:
            return False
        return len(set(self._timeout_run)) > 1 or len(self._units_addressed) <= 1


class ModbusSerialLink(ModbusLink):
    """Modbus RTU on the serial port `device` (e.g. /dev/ttyUSB0, an RS-485 adapter), shared
    by every unit on that bus (see `ModbusLink`).

    Timeouts never reopen the port: on a serial line a silent unit is just a silent unit, and
    reopening a local port cures nothing on the wire. The port is reopened (after the
    back-off) only when it fails itself: it cannot be opened or configured, or reading or
    writing it fails (adapter unplugged). Requests are at least the line's t3.5 silence
    apart, plus `request_gap_s`.
    """

    def __init__(
        self,
        device: str,
        settings: SerialSettings | None = None,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        request_gap_s: float = 0.0,
    ) -> None:
        super().__init__(
            request_timeout_s=request_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            request_gap_s=request_gap_s,
        )
        self.device = device
        self.settings = settings if settings is not None else SerialSettings()

    @property
    def endpoint(self) -> str:
        return self.device

    def __repr__(self) -> str:
        return f"ModbusSerialLink({self.device} {self.settings}, connected={self.connected})"

    @property
    def _minimum_gap_s(self) -> float:
        return self.settings.frame_gap_s

    def _timeouts_mean_dead_connection(self) -> bool:
        return False

    def _connect_problem(self, exc: Exception) -> str:
        # pyserial's errors do not say which settings the port refused (a pty refuses parity).
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        return f"cannot connect at {self.settings} ({kind}: {exc})"

    def _new_client(self) -> ModbusBaseClient:
        # Same reasoning as for TCP: this link owns reconnects and retries.
        return AsyncModbusSerialClient(
            self.device,
            framer=FramerType.RTU,
            baudrate=self.settings.baudrate,
            bytesize=self.settings.bytesize,
            parity=self.settings.parity,
            stopbits=self.settings.stopbits,
            timeout=self.request_timeout_s,
            retries=0,
            reconnect_delay=0,
            reconnect_delay_max=0,
        )


class ModbusLinkPool:
    """Hands out one link per bus, so chargers on the same bus share it: per (host, port,
    framing) for TCP sockets (Alfen allows at most two masters, chargers.md §3), per serial
    device for serial ports (a port can be opened once).

    Every link gets the pool's timeout and back-off settings. A bus's request gap is the
    largest any of its users asked for: the slowest device on a bus sets the pace for all.
    """

    def __init__(
        self,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self._options: dict[str, float] = {
            "request_timeout_s": request_timeout_s,
            "backoff_initial_s": backoff_initial_s,
            "backoff_max_s": backoff_max_s,
        }
        self._socket_links: dict[tuple[str, int, ModbusFraming], ModbusLink] = {}
        self._serial_links: list[ModbusSerialLink] = []

    @property
    def links(self) -> list[ModbusLink]:
        """Every link handed out so far."""
        return [*self._socket_links.values(), *self._serial_links]

    def link(
        self, host: str, port: int = DEFAULT_PORT, *, request_gap_s: float = 0.0
    ) -> ModbusTcpLink:
        """The Modbus TCP link for host:port, created on first use."""
        key = (host, port, ModbusFraming.TCP)
        existing = self._socket_links.get(key)
        if existing is None:
            existing = ModbusTcpLink(host, port, request_gap_s=request_gap_s, **self._options)
            self._socket_links[key] = existing
        assert isinstance(existing, ModbusTcpLink)
        _raise_gap(existing, request_gap_s)
        return existing

    def rtu_over_tcp_link(
        self, host: str, port: int, *, request_gap_s: float = 0.0
    ) -> ModbusRtuOverTcpLink:
        """The RTU-over-TCP link for the converter at host:port, created on first use."""
        key = (host, port, ModbusFraming.RTU)
        existing = self._socket_links.get(key)
        if existing is None:
            existing = ModbusRtuOverTcpLink(
                host, port, request_gap_s=request_gap_s, **self._options
            )
            self._socket_links[key] = existing
        assert isinstance(existing, ModbusRtuOverTcpLink)
        _raise_gap(existing, request_gap_s)
        return existing

    def serial_link(
        self,
        device: str,
        settings: SerialSettings | None = None,
        *,
        request_gap_s: float = 0.0,
    ) -> ModbusSerialLink:
        """The link for the serial port `device`, created on first use.

        Two names of the same device (a /dev/serial/by-id symlink and its target) are the
        same bus. Raises `ValueError` naming both settings when the port is already in use
        with other line settings: one wire cannot run at two baud rates.
        """
        settings = settings if settings is not None else SerialSettings()
        for existing in self._serial_links:
            if _same_device(existing.device, device):
                if existing.settings != settings:
                    raise ValueError(
                        f"serial port {device} is already in use at {existing.settings} "
                        f"(as {existing.device}); asked for {settings}"
                    )
                _raise_gap(existing, request_gap_s)
                return existing
        link = ModbusSerialLink(device, settings, request_gap_s=request_gap_s, **self._options)
        self._serial_links.append(link)
        return link

    async def close(self) -> None:
        """Close every link and forget them."""
        for link in self.links:
            await link.close()
        self._socket_links.clear()
        self._serial_links.clear()


def _raise_gap(link: ModbusLink, request_gap_s: float) -> None:
    if request_gap_s < 0:
        raise ValueError(f"request gap {request_gap_s} s is negative")
    link.request_gap_s = max(link.request_gap_s, request_gap_s)


def _same_device(first: str, second: str) -> bool:
    if os.path.abspath(first) == os.path.abspath(second):
        return True
    # Resolved now: a by-id symlink and the node it points to are one port.
    return os.path.realpath(first) == os.path.realpath(second)
