"""The same meter behind ``socket://127.0.0.1:PORT`` (a LAN instrument, or CI hosts without
ptys). One client at a time; ``unplug`` closes the connection and the listener."""

from __future__ import annotations

import contextlib
import select
import socket

from perflab.emulator.meters.port_io import write_all


class TcpPort:
    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.setblocking(False)
        self.path = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._client: socket.socket | None = None
        self.closed = False

    def _accept(self) -> None:
        if self._client is None:
            with contextlib.suppress(BlockingIOError):
                client, _ = self._listener.accept()
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._client = client

    def read(self, timeout_s: float) -> bytes:
        if self.closed:
            return b""
        self._accept()
        watch = [self._client] if self._client is not None else [self._listener]
        ready, _, _ = select.select(watch, [], [], timeout_s)
        if not ready or self._client is None:
            return b""
        try:
            data = self._client.recv(65536)
        except (BlockingIOError, ConnectionError):
            return b""
        if not data:  # the client went away; wait for the next one
            self._client.close()
            self._client = None
        return data

    def write(self, data: bytes) -> int:
        if self.closed or self._client is None or not data:
            return 0
        try:
            return self._client.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            return 0

    def write_all(self, data: bytes, timeout_s: float = 1.0) -> int:
        return write_all(self.write, lambda: None if self.closed else self._client, data, timeout_s)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for s in (self._client, self._listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
