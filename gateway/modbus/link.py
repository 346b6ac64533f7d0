"""One Modbus TCP connection to a host:port, shared by every unit id behind it.

Requests on a link are serialized (a Modbus TCP device or gateway usually answers one request
at a time, and an RS-485 gateway behind it certainly does). Each request has its own timeout.
When the connection drops or cannot be made, the link waits with a capped exponential back-off
before it tries again; requests in the meantime fail at once instead of piling up.

Every failure is raised as a `ModbusLinkError` (a `ChargerUnavailable`); nothing pymodbus
raises escapes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

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

# After this many consecutive timeouts the connection is treated as dead and rebuilt: a
# half-open TCP connection (unplugged cable) never reports an error by itself.
TIMEOUTS_BEFORE_RECONNECT = 3


class ModbusLinkError(ChargerUnavailable):
    """A request on a link failed. The message says which device, unit and registers."""


class ModbusExceptionResponse(ModbusLinkError):
    """The device answered with a Modbus exception response."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class ModbusTimeout(ModbusLinkError):
    """The device did not answer within the request timeout."""


class ModbusConnectionError(ModbusLinkError):
    """The TCP connection could not be made or broke."""


class ModbusTcpLink:
    """A shared, serialized, self-healing Modbus TCP connection.

    `request_timeout_s` bounds every request (and every connection attempt); after a failed
    connection the link waits `backoff_initial_s`, doubling per failure up to `backoff_max_s`.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.request_timeout_s = request_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None
        self._backoff_s = backoff_initial_s
        self._next_attempt_at = 0.0
        self._last_failure = ""
        self._consecutive_timeouts = 0
        self._closed = False

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def __repr__(self) -> str:
        return f"ModbusTcpLink({self.endpoint}, connected={self.connected})"

    async def read_registers(
        self, unit_id: int, table: RegisterTable, address: int, count: int
    ) -> list[int]:
        """Read `count` registers from `address` of `table` on `unit_id`."""
        what = f"reading {table.value} {address}..{address + count - 1}"

        def call(client: AsyncModbusTcpClient) -> Awaitable[Any]:
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

        def call(client: AsyncModbusTcpClient) -> Awaitable[Any]:
            if len(values) == 1:
                return client.write_register(address, values[0], device_id=unit_id)
            return client.write_registers(address, list(values), device_id=unit_id)

        await self._execute(unit_id, what, call)

    async def close(self) -> None:
        """Close the connection; later requests fail with `ModbusConnectionError`."""
        async with self._lock:
            self._closed = True
            self._drop_connection()

    async def _execute(
        self, unit_id: int, what: str, call: Callable[[AsyncModbusTcpClient], Awaitable[Any]]
    ) -> Any:
        prefix = f"{self.endpoint} unit {unit_id}: {what}"
        async with self._lock:
            client = await self._connected_client(prefix)
            try:
                # pymodbus applies its own timeout too; this one also covers a stuck send.
                async with asyncio.timeout(self.request_timeout_s * 1.5):
                    response = await call(client)
            except TimeoutError as exc:
                raise self._timed_out(prefix) from exc
            except ModbusException as exc:
                # pymodbus reports both "no response" and "connection lost" this way.
                if client.connected:
                    raise self._timed_out(prefix) from exc
                raise self._connection_failed(prefix, f"connection lost ({exc})") from exc
            except OSError as exc:
                raise self._connection_failed(prefix, f"connection failed ({exc})") from exc
            self._consecutive_timeouts = 0
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                name = EXCEPTION_CODE_NAMES.get(code, "unknown exception")
                raise ModbusExceptionResponse(f"{prefix}: Modbus exception {code} ({name})", code)
            return response

    async def _connected_client(self, prefix: str) -> AsyncModbusTcpClient:
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
        # reconnect_delay=0 turns pymodbus' own reconnect loop off: this link owns the
        # back-off, so that requests during it fail fast and visibly. retries=0 for the same
        # reason: the poller's next cycle is the retry.
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.request_timeout_s,
            retries=0,
            reconnect_delay=0,
            reconnect_delay_max=0,
        )
        try:
            async with asyncio.timeout(self.request_timeout_s * 1.5):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise self._connection_failed(prefix, f"cannot connect ({exc!r})") from exc
        if not ok:
            client.close()
            raise self._connection_failed(prefix, "cannot connect")
        self._client = client
        self._backoff_s = self.backoff_initial_s
        log.info("modbus link connected", extra={"endpoint": self.endpoint})
        return client

    def _timed_out(self, prefix: str) -> ModbusTimeout:
        self._consecutive_timeouts += 1
        if self._consecutive_timeouts >= TIMEOUTS_BEFORE_RECONNECT:
            self._consecutive_timeouts = 0
            self._drop_connection()
        return ModbusTimeout(f"{prefix}: no response within {self.request_timeout_s} s")

    def _connection_failed(self, prefix: str, problem: str) -> ModbusConnectionError:
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


class ModbusLinkPool:
    """Hands out one `ModbusTcpLink` per host:port, so chargers behind the same gateway share
    a connection (Alfen allows at most two masters, chargers.md §3)."""

    def __init__(
        self,
        *,
        request_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self._options = {
            "request_timeout_s": request_timeout_s,
            "backoff_initial_s": backoff_initial_s,
            "backoff_max_s": backoff_max_s,
        }
        self._links: dict[tuple[str, int], ModbusTcpLink] = {}

    def link(self, host: str, port: int = DEFAULT_PORT) -> ModbusTcpLink:
        """The link for host:port, created on first use."""
        key = (host, port)
        if key not in self._links:
            self._links[key] = ModbusTcpLink(host, port, **self._options)
        return self._links[key]

    async def close(self) -> None:
        for link in self._links.values():
            await link.close()
        self._links.clear()
