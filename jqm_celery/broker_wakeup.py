"""Wake-ups for the embedded broker: a publisher tells the consumers waiting on the same broker file that
a message is there, so that they need not poll for it.

Each connection that waits for messages binds one Unix datagram socket in the wake-up folder beside the
broker file (``broker.sqlite-wake/``) before it first looks for a message. A publisher, once its message
is committed, sends one empty datagram to every socket in that folder; a waiting consumer waits on its
socket instead of sleeping, so a datagram ends its wait at once.

Nothing travels over the sockets but "look again": messages stay in the SQLite file, and a wake-up that
is lost costs a wait, never a message. A consumer that could not bind a socket (no Unix sockets, a
folder it cannot write) polls at the transport's polling interval, as it did before wake-ups, and one
that has a socket still looks at a longer interval, for wake-ups that could not reach it (its socket
file removed) and for messages that become visible again after their visibility timeout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
import sys
import time
from pathlib import Path

#: Longest socket path every platform accepts (Linux allows 107 bytes, macOS 103).
_MAX_SOCKET_PATH = 100


class Wakeup:
    """The wake-up sockets of one broker file, as seen from one connection (publisher and consumer)."""

    def __init__(self, broker_path: str | Path) -> None:
        self.folder = Path(f"{broker_path}-wake")
        self._sender: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._address: str | None = None
        self._owner_pid: int | None = None
        self._folder_fd: int | None = None
        self._listen_failed = False

    @property
    def listening(self) -> bool:
        """Whether this connection has a socket that publishers can wake."""
        return self._listener is not None and self._owner_pid == os.getpid()

    def listen(self) -> bool:
        """Bind this connection's socket (once); False when wake-ups cannot reach it: it must poll."""
        if self.listening or self._listen_failed:
            return self.listening
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if hasattr(socket, "AF_UNIX") else None
        try:
            if listener is None:
                raise OSError("this platform has no Unix sockets")
            self.folder.mkdir(parents=True, exist_ok=True)
            address = self._address_of(name)
            listener.bind(address)
        except OSError:
            if listener is not None:
                listener.close()
            self._listen_failed = True
            return False
        self._listener, self._address, self._owner_pid = listener, address, os.getpid()
        return True

    def wait(self, timeout_s: float) -> None:
        """Return when woken, or after ``timeout_s``; sleep that long if this connection cannot be woken."""
        listener = self._listener
        if listener is None or not self.listening:
            time.sleep(timeout_s)
            return
        listener.settimeout(max(timeout_s, 0.0))
        try:
            listener.recv(1)
        except (TimeoutError, BlockingIOError):
            return
        # One look serves every wake-up that came meanwhile.
        listener.setblocking(False)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                listener.recv(1)

    def notify(self) -> None:
        """Wake every consumer of this broker file (after the message is committed)."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            self._send(name)

    def notify_self(self) -> None:
        """End this connection's own wait (a message it held was acknowledged: it may take another)."""
        if self.listening and self._address is not None:
            self._send_to(self._address, name=None)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            if self._owner_pid == os.getpid() and self._address is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._address)
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._folder_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._folder_fd)
            self._folder_fd = None

    def _send(self, name: str) -> None:
        try:
            address = self._address_of(name)
        except OSError:
            return
        self._send_to(address, name)

    def _send_to(self, address: str, name: str | None) -> None:
        sender = self._sender
        if sender is None:
            sender = self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        try:
            sender.sendto(b"", address)
        except BlockingIOError:
            pass  # its queue is full of wake-ups it has not read yet
        except ConnectionRefusedError:
            # Nobody listens there any more (its process died): the name is unique, so nobody will.
            if name is not None:
                _remove_socket(self.folder / name)
        except OSError:
            pass  # not a socket, or gone: that consumer finds the message when it polls

    def _address_of(self, name: str) -> str:
        """The path to bind or send to; through this process's handle on the folder when it is too long."""
        path = str(self.folder / name)
        if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
            return path
        if not sys.platform.startswith("linux"):
            raise OSError(f"socket path too long: {path}")
        if self._folder_fd is None:
            self._folder_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._folder_fd}/{name}"


def _remove_socket(path: Path) -> None:
    """Remove a socket file that nobody listens on (and nothing else: the folder is not ours alone)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
