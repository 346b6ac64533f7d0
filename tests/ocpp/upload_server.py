"""A real HTTP server on loopback (aiohttp) that takes the files stations upload: PUT under
/upload/ is stored, PUT under /broken/ fails with HTTP 500."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from aiohttp import web

from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S


@dataclass
class UploadServer:
    files: dict[str, bytes] = field(default_factory=dict)
    """Path → body of every successful upload."""
    failed_attempts: int = 0
    _runner: web.AppRunner | None = None
    _port: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def location(self, prefix: str = "upload") -> str:
        return f"http://127.0.0.1:{self._port}/{prefix}/"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_put("/upload/{name}", self._store)
        app.router.add_put("/broken/{name}", self._fail)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.bind(("127.0.0.1", 0))
        self._port = listening.getsockname()[1]
        await web.SockSite(self._runner, listening).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for_file(self) -> tuple[str, bytes]:
        async with asyncio.timeout(SAFETY_DEADLINE_S):
            while not self.files:
                self._arrived.clear()
                await self._arrived.wait()
        path = next(iter(self.files))
        return path, self.files[path]

    async def _store(self, request: web.Request) -> web.Response:
        self.files[request.path] = await request.read()
        self._arrived.set()
        return web.Response(status=201)

    async def _fail(self, request: web.Request) -> web.Response:
        await request.read()
        self.failed_attempts += 1
        return web.Response(status=500, text="disk full")
