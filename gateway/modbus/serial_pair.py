"""A virtual null-modem cable: two pseudo-terminals whose bytes are copied to each other.

What one program writes to `port_a` another reads from `port_b`, and back, as with two
RS-485/RS-232 adapters joined by a cable (or `socat pty,raw pty,raw`). Both ends are real
serial devices as far as pyserial and pymodbus are concerned, so a Modbus RTU client and a
simulated RTU bus can talk without hardware (tests, `evgw simulate`).

Pitfalls this module deals with, so that pyserial can open the slave paths reliably:

- The pair keeps its own descriptor of each slave open. On Linux, once no process holds a
  slave open, reading its master fails with EIO and bytes written in the meantime are lost;
  holding the slave keeps the line up while a client closes and reopens the port.
- Both slaves start in raw mode: a fresh pty is a cooked terminal (echo, line buffering,
  CR/LF translation), which would echo and mangle binary frames before the opener
  configures the line. pyserial sets raw mode again when it opens the port.
- A pty carries 8 data bits without parity only: use `PTY_LINE` (8N1) on both ends. Linux's
  pty driver clears PARENB and forces CS8 on every tcsetattr, and recent kernels refuse with
  EINVAL a tcsetattr whose only requested change is one the pty cannot make (POSIX allows
  that). pyserial applies the settings again whenever its timeout changes, so it asks for
  the parity again, and pymodbus changes the timeout right after opening the port: opening
  a pty at 8E1 (the Modbus default) or 7 data bits therefore fails with
  `termios.error(22, 'Invalid argument')`, although pyserial's first configuration passed.
  Baud rate and stop bits are accepted and ignored: bytes arrive at memory speed.

Closing the pair hangs up both lines: a program that still has a port open gets an error on
its next read or write (pyserial: `SerialException`), as when a USB adapter is unplugged.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import tty
from pathlib import Path
from types import TracebackType

from gateway.modbus.link import SerialSettings

log = logging.getLogger(__name__)

# A direction stops reading its source while this much is waiting for its destination, so a
# receiver that does not read pushes back on the sender (like hardware flow control) instead
# of filling memory.
_MAX_PENDING_BYTES = 64 * 1024
_READ_CHUNK = 4096

PTY_LINE = SerialSettings(baudrate=115200, parity="N", stopbits=1, bytesize=8)
"""Line settings a pty carries (8N1; see the module notes). The baud rate is ignored by a
pty; 115200 keeps pymodbus' timing assumptions short."""


class SerialPair:
    """Two connected pseudo-terminals; `port_a` and `port_b` are the paths to open.

    With `link_a`/`link_b` the ports are (also) reachable as those symlinks, which are
    created or replaced on construction and removed by `close()`: a new pair with the same
    links then stands in for a serial adapter that was unplugged and plugged back in
    (the path stays the same, like a `/dev/serial/by-id/...` name). A link path that exists
    and is not a symlink is refused with `FileExistsError`.

    The pair copies bytes in a background thread until `close()`; it is usable as a context
    manager.
    """

    def __init__(self, link_a: str | Path | None = None, link_b: str | Path | None = None) -> None:
        self._fds: list[int] = []
        self._links: list[Path] = []
        self._closed = False
        try:
            master_a, slave_a = self._open_pty()
            master_b, slave_b = self._open_pty()
            self.device_a = os.ttyname(slave_a)
            """The pty slave device of end A (e.g. /dev/pts/3)."""
            self.device_b = os.ttyname(slave_b)
            """The pty slave device of end B."""
            self.port_a = self._link(link_a, self.device_a)
            """The path to open for end A: `link_a` if given, else `device_a`."""
            self.port_b = self._link(link_b, self.device_b)
            """The path to open for end B: `link_b` if given, else `device_b`."""
            self._wake_r, self._wake_w = os.pipe()
            self._fds += [self._wake_r, self._wake_w]
        except BaseException:
            self._release()
            raise
        self._masters = (master_a, master_b)
        self._thread = threading.Thread(
            target=self._copy, name=f"serial-pair {self.device_a}<->{self.device_b}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"SerialPair({self.port_a} <-> {self.port_b}, {state})"

    def __enter__(self) -> SerialPair:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop copying, hang up both lines and remove the symlinks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._release()

    # ---------------------------------------------------------------- internals

    def _open_pty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        self._fds += [master, slave]
        tty.setraw(slave)
        os.set_blocking(master, False)
        return master, slave

    def _link(self, link: str | Path | None, device: str) -> str:
        if link is None:
            return device
        path = Path(link)
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            raise FileExistsError(f"{path} exists and is not a symlink; not replacing it")
        path.symlink_to(device)
        self._links.append(path)
        return str(path)

    def _release(self) -> None:
        for path in self._links:
            # Only remove a link that still points at this pair: a newer pair may own it.
            with contextlib.suppress(OSError):
                if os.readlink(path) in (self.device_a, self.device_b):
                    path.unlink()
        self._links.clear()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def _copy(self) -> None:
        """Forward bytes master A -> master B and back until woken by `close()`."""
        master_a, master_b = self._masters
        # pending[fd]: bytes waiting to be written to master fd.
        pending: dict[int, bytearray] = {master_a: bytearray(), master_b: bytearray()}
        peer = {master_a: master_b, master_b: master_a}
        while True:
            readers = [self._wake_r] + [
                fd for fd in (master_a, master_b) if len(pending[peer[fd]]) < _MAX_PENDING_BYTES
            ]
            writers = [fd for fd, data in pending.items() if data]
            try:
                readable, writable, _ = select.select(readers, writers, [])
            except OSError as exc:  # pragma: no cover - only if a descriptor vanished
                log.warning("serial pair stopped", extra={"problem": str(exc)})
                return
            if self._wake_r in readable:
                return
            for fd in readable:
                try:
                    data = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    # EIO: the slave was hung up. With the pair holding each slave open this
                    # only happens while closing; anything else is a real failure.
                    if exc.errno != errno.EIO:
                        log.warning("serial pair read failed", extra={"problem": str(exc)})
                    return
                pending[peer[fd]] += data
            for fd in writable:
                try:
                    written = os.write(fd, pending[fd])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        log.warning("serial pair write failed", extra={"problem": str(exc)})
                    return
                del pending[fd][:written]
