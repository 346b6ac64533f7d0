"""Serving simulated chargers over Modbus: one server, many unit ids (as a Modbus gateway in
front of several chargers would)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from gateway.modbus.simulator import SimulatedCharger

log = logging.getLogger(__name__)

_WRITE_FUNCTIONS = (6, 16)


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
