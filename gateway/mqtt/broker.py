"""A local Mosquitto broker process, for `evgw simulate` and the tests: a generated config,
ephemeral loopback ports, and stop/start that keep the ports (to play a broker restart)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
from pathlib import Path

START_TIMEOUT_S = 10.0
"""Mosquitto listens within milliseconds; this bounds a broker that cannot start."""
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
"""Debian's package installs the broker in /usr/sbin, often not on a user's PATH."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalBroker:
    """A Mosquitto process with a generated config; stop/start keep the same ports."""

    @classmethod
    def anonymous(cls, directory: Path) -> LocalBroker:
        """A broker on a free loopback port that lets anyone in (simulations, tests)."""
        port = free_port()
        config = base_config(directory / "mosquitto.log") + (
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        )
        return cls(directory, config, [port])

    def __init__(self, directory: Path, config: str, ports: list[int]) -> None:
        self.directory = directory
        self.ports = ports
        self.port = ports[0]
        self.config_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        self.config_file.write_text(config)
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the broker and wait until it listens (a few tens of milliseconds). Raises
        `FileNotFoundError` when Mosquitto is not installed, `RuntimeError` when it does not
        come up within 10 s."""
        assert self._process is None
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                MOSQUITTO, "-c", str(self.config_file), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                # Connecting to a loopback port answers at once, listening or not.
                while not all(_port_open(port) for port in self.ports):
                    if self._process.returncode is not None:
                        raise RuntimeError(f"mosquitto exited: {self.log_file.read_text()}")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise RuntimeError(f"mosquitto did not listen: {self.log_file.read_text()}") from None

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        process = self._process
        if process is None:
            return
        self._process = None
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None


def base_config(log_file: Path) -> str:
    # `user root` keeps Mosquitto from dropping to the `mosquitto` user when the tests run
    # as root (it could not read the files in the private tmp directory); ignored otherwise.
    return f"user root\npersistence false\nlog_dest file {log_file}\nlog_type all\n"
