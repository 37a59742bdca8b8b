"""The device side of the adb transport for one emulated phone, over TCP on 127.0.0.1.

The real adb server connects here after ``adb connect 127.0.0.1:PORT`` exactly as it does to
a phone on Wi-Fi adb: CNXN handshake (no AUTH), then OPEN/OKAY/WRTE/CLSE streams. Services:
``shell:``, ``shell,v2,...:``, ``exec:``, ``sync:``, ``reboot:``. Every WRTE is acknowledged
with one OKAY and we send our next WRTE on a stream only after the host's OKAY (flow control
without ``delayed_ack``, which we do not advertise). Streams are independent threads, so
several commands can run at once.

The listener binds 127.0.0.1 only: an adbd speaks no authentication here and runs commands
for whoever connects, so it must never be reachable from another machine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from perflab.emulator import adb_protocol as ap
from perflab.emulator.fs import SHELL_UID
from perflab.emulator.procs import ADBD_PID
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import IO, Shell
from perflab.emulator.sync_service import SyncSession

log = logging.getLogger(__name__)

# Only features we implement: no delayed_ack, no sendrecv_v2 (SND2/RCV2), no compression.
FEATURES = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir", "fixed_push_symlink_timestamp")

_CLOSED = object()


@dataclass(frozen=True)
class Faults:
    """Fault injection for one emulated phone.

    * ``drop_after_s`` / ``drop_after_commands``: drop the adb connection once, after this many
      seconds connected or when the (N+1)-th command (shell/exec/sync stream) is opened;
      the phone stays unreachable for ``down_for_s`` and then accepts connections again.
    * ``transfer_bytes_per_s``: pace data the host sends (pushes) to this rate.
    * ``missing_nodes``: sysfs/proc paths that do not exist on this phone.
    * ``reboot_down_s``: how long a ``reboot`` keeps the phone away.
    """

    drop_after_s: float | None = None
    drop_after_commands: int | None = None
    down_for_s: float = 0.0
    transfer_bytes_per_s: float | None = None
    missing_nodes: tuple[str, ...] = ()
    reboot_down_s: float = 3.0


class _Dropped(Exception):
    pass


class Stream:
    """One adb stream (device end)."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbox: queue.Queue[object] = queue.Queue()
        self._can_send = threading.Event()
        self._can_send.set()
        self.closed = threading.Event()
        self.cancel = threading.Event()
        #: called once when the host closes the stream first (the session's hangup)
        self.on_hangup: Callable[[], None] | None = None

    # host -> device
    def on_write(self, data: bytes) -> None:
        self.inbox.put(data)

    def on_okay(self) -> None:
        self._can_send.set()

    def on_close(self) -> None:
        first = not self.closed.is_set()
        self.closed.set()
        self.cancel.set()
        self._can_send.set()
        self.inbox.put(_CLOSED)
        if first and self.on_hangup is not None:
            self.on_hangup()

    def read(self, timeout_s: float | None = None) -> bytes | None:
        """Next chunk from the host; None when the host closed the stream."""
        item = self.inbox.get(timeout=timeout_s)
        if item is _CLOSED:
            self.inbox.put(_CLOSED)
            return None
        assert isinstance(item, bytes)
        return item

    # device -> host
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        maxp = self.conn.host_max_payload
        while view:
            chunk = bytes(view[:maxp])
            view = view[maxp:]
            while not self._can_send.wait(0.5):
                if self.closed.is_set() or self.conn.dead.is_set():
                    raise _Dropped()
            if self.closed.is_set():
                raise _Dropped()
            self._can_send.clear()
            self.conn.send(ap.Message(ap.Command.WRTE, self.local_id, self.remote_id, chunk))

    def close(self) -> None:
        if not self.closed.is_set():
            # let the host acknowledge our last WRTE before closing, as adbd does
            self._can_send.wait(2.0)
            self.closed.set()
            self.cancel.set()
            self.inbox.put(_CLOSED)  # ends this stream's stdin reader
            self.conn.send(ap.Message(ap.Command.CLSE, self.local_id, self.remote_id))
        self.conn.forget(self.local_id)


class Connection:
    """One transport connection from the adb server."""

    def __init__(self, server: AdbdServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.ids = itertools.count(1)
        self.host_max_payload = ap.MAX_PAYLOAD_V1
        self.version = ap.A_VERSION_MIN
        self.dead = threading.Event()
        self.online = False
        self.connected_mono_s = time.monotonic()

    def send(self, msg: ap.Message) -> None:
        raw = ap.pack_message(msg, with_checksum=self.version < ap.A_VERSION_SKIP_CHECKSUM)
        with self.send_lock:
            if self.dead.is_set():
                raise _Dropped()
            try:
                self.sock.sendall(raw)
            except OSError:
                self.kill()
                raise _Dropped() from None

    def forget(self, local_id: int) -> None:
        self.streams.pop(local_id, None)

    def kill(self) -> None:
        if self.dead.is_set():
            return
        self.dead.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for st in list(self.streams.values()):
            st.on_close()

    def serve(self) -> None:
        reader = ap.MessageReader()
        try:
            while not self.dead.is_set():
                try:
                    chunk = self.sock.recv(1 << 20)
                except OSError:
                    break
                if not chunk:
                    break
                for msg in reader.feed(chunk):
                    self.handle(msg)
        except ap.ProtocolError as exc:
            log.warning("%s: protocol error from host: %s", self.server.serial, exc)
        except _Dropped:
            pass
        finally:
            self.kill()

    def handle(self, msg: ap.Message) -> None:
        c = ap.Command
        if msg.command == c.CNXN:
            self.version = min(msg.arg0, ap.A_VERSION)
            self.host_max_payload = max(ap.MAX_PAYLOAD_V1, min(msg.arg1, ap.MAX_PAYLOAD))
            banner = ap.format_banner(self.server.banner_props(), FEATURES)
            self.send(ap.Message(c.CNXN, self.version, ap.MAX_PAYLOAD, banner))
            self.online = True
            self.connected_mono_s = time.monotonic()
            return
        if not self.online:
            if msg.command == c.AUTH:
                return  # we never ask for AUTH; ignore stray ones
            raise ap.ProtocolError(f"{msg.command.name} before CNXN")
        if msg.command == c.OPEN:
            service = msg.data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            self.open_stream(msg.arg0, service)
        elif msg.command == c.WRTE:
            st = self.streams.get(msg.arg1)
            if st is None:
                self.send(ap.Message(c.CLSE, 0, msg.arg0))
                return
            rate = self.server.faults.transfer_bytes_per_s
            if rate:
                time.sleep(len(msg.data) / rate)
            st.on_write(msg.data)
            self.send(ap.Message(c.OKAY, st.local_id, st.remote_id))
        elif msg.command == c.OKAY:
            st = self.streams.get(msg.arg1)
            if st is not None:
                st.remote_id = msg.arg0
                st.on_okay()
        elif msg.command == c.CLSE:
            st = self.streams.pop(msg.arg1, None)
            if st is not None:
                st.on_close()
        # SYNC / STLS / AUTH after CNXN: ignored

    def open_stream(self, remote_id: int, service: str) -> None:
        c = ap.Command
        handler = self.server.service_handler(service)
        if handler is None:
            self.send(ap.Message(c.CLSE, 0, remote_id))
            return
        if not self.server.count_command(service):
            # fault: this command never gets an answer; the connection drops now
            self.server.drop_now()
            raise _Dropped()
        local_id = next(self.ids)
        st = Stream(self, local_id, remote_id)
        self.streams[local_id] = st
        self.send(ap.Message(c.OKAY, local_id, remote_id))

        def run() -> None:
            try:
                handler(st)
            except _Dropped:
                pass
            except Exception:
                log.exception("%s: service %r failed", self.server.serial, service)
            finally:
                with contextlib.suppress(_Dropped):
                    st.close()

        threading.Thread(target=run, name=f"adbd-{service[:20]}", daemon=True).start()


class _ShellStdin:
    """The host's stdin for one shell stream (raw, or shell_v2 STDIN packets until CLOSE_STDIN)."""

    def __init__(self, st: Stream, v2: bool) -> None:
        self.st = st
        self.v2 = v2
        self.buf = bytearray()
        self.done = threading.Event()
        self.reader = ap.ShellPacketReader()

    def pump(self) -> None:
        """Runs on its own thread until the stream closes (either end)."""
        while (chunk := self.st.read()) is not None:
            if not self.v2:
                self.buf.extend(chunk)
                continue
            for pid, data in self.reader.feed(chunk):
                if pid == ap.ShellPacketId.STDIN:
                    self.buf.extend(data)
                elif pid == ap.ShellPacketId.CLOSE_STDIN:
                    self.done.set()
        self.done.set()

    def read_all(self) -> bytes:
        while not self.done.wait(0.1):
            if self.st.cancel.is_set():
                break
        return bytes(self.buf)


class _ShellWriter:
    """stdout or stderr of a shell stream: raw, or shell_v2 packets; CRLF on a pty."""

    def __init__(self, st: Stream, svc: ap.ShellService, packet_id: ap.ShellPacketId,
                 lock: threading.Lock | None = None) -> None:
        self.st = st
        self.v2 = svc.v2
        self.pty = svc.pty and not svc.exec_
        self.packet_id = packet_id
        self.lock = lock or threading.Lock()

    def __call__(self, data: bytes) -> None:
        if self.pty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self.lock:
            self.st.write(ap.pack_shell_packet(self.packet_id, data) if self.v2 else data)


class AdbdServer:
    """Listens on 127.0.0.1:port and serves adb transport connections for one phone."""

    def __init__(self, rt: PhoneRuntime, port: int, faults: Faults,
                 on_reboot: Callable[[float], None] | None = None) -> None:
        self.rt = rt
        self.port = port
        self.faults = faults
        self.serial = f"127.0.0.1:{port}"
        self._lsock: socket.socket | None = None
        self._conns: list[Connection] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._up = threading.Event()
        self._commands = 0
        self._drop_done = False
        self._on_reboot = on_reboot
        self._threads: list[threading.Thread] = []

    @property
    def up(self) -> bool:
        """Listening (False while dropped or rebooting)."""
        return self._up.is_set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._listen()
        t = threading.Thread(target=self._watchdog, name=f"adbd-watch-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))  # loopback only: see the module docstring
        s.listen(8)
        self._lsock = s
        self._up.set()
        t = threading.Thread(target=self._accept_loop, args=(s,), name=f"adbd-accept-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self, lsock: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = lsock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock)
            with self._lock:
                self._conns = [c for c in self._conns if not c.dead.is_set()] + [conn]
            threading.Thread(target=conn.serve, name=f"adbd-conn-{self.port}", daemon=True).start()

    def _close_listener(self) -> None:
        self._up.clear()
        if self._lsock is not None:
            with contextlib.suppress(OSError):
                self._lsock.shutdown(socket.SHUT_RDWR)
            self._lsock.close()
            self._lsock = None

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self._kill_connections()

    def _kill_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            c.kill()

    # ------------------------------------------------------------------ faults
    def go_down(self, down_s: float, *, reboot: bool = False) -> None:
        """Drop every connection and stay unreachable for ``down_s`` seconds.

        With ``reboot`` the phone also powers off (processes and run-time properties are lost)
        before this returns, and ``on_reboot`` runs when it is back.
        """
        if self._stopped.is_set():
            return
        self._close_listener()
        self._kill_connections()
        if reboot:
            self.rt.power_off()

        def back() -> None:
            if not self._stopped.wait(down_s) and self._lsock is None:
                if reboot and self._on_reboot is not None:
                    self._on_reboot(down_s)  # booted before adb can see it again
                try:
                    self._listen()
                except OSError:
                    log.exception("%s: could not listen again", self.serial)

        threading.Thread(target=back, name=f"adbd-down-{self.port}", daemon=True).start()

    def drop_now(self) -> None:
        with self._lock:
            if self._drop_done:
                return
            self._drop_done = True
        threading.Thread(target=self.go_down, args=(self.faults.down_for_s,), daemon=True).start()

    def count_command(self, service: str) -> bool:
        """False when the drop-after-N-commands fault fires on this command."""
        if not service.startswith(("shell", "exec:", "sync:")):
            return True
        with self._lock:
            self._commands += 1
            n = self.faults.drop_after_commands
            return n is None or self._drop_done or self._commands <= n

    def _watchdog(self) -> None:
        limit = self.faults.drop_after_s
        while not self._stopped.wait(0.1):
            if limit is None or self._drop_done:
                continue
            with self._lock:
                online = [c for c in self._conns if c.online and not c.dead.is_set()]
            if online and time.monotonic() - online[0].connected_mono_s >= limit:
                self.drop_now()

    # ------------------------------------------------------------------ services
    def banner_props(self) -> dict[str, str]:
        p = self.rt.props
        return {"ro.product.name": p.get("ro.product.name", ""), "ro.product.model": p.get("ro.product.model", ""),
                "ro.product.device": p.get("ro.product.device", "")}

    def service_handler(self, service: str) -> Callable[[Stream], None] | None:
        sh = ap.parse_shell_service(service)
        if sh is not None:
            return lambda st: self._shell(st, sh)
        if service == "sync:":
            return self._sync
        if service.startswith("reboot:"):
            return self._reboot
        return None

    def _reboot(self, st: Stream) -> None:
        """``adb reboot``: the phone is off the bus before this stream ends, as a real one is, so
        ``adb wait-for-device`` right after cannot see it still up."""
        del st
        if self.rt.request_reboot is not None:
            self.rt.request_reboot(0.0)
        else:
            self.go_down(self.faults.reboot_down_s, reboot=True)

    def _shell(self, st: Stream, svc: ap.ShellService) -> None:
        if svc.command == "":
            msg = b"sh: interactive shell: not supported by the emulated phone\n"
            st.write(ap.pack_shell_packet(ap.ShellPacketId.STDERR, msg) + ap.pack_shell_exit(127) if svc.v2 else msg)
            return
        stdin = _ShellStdin(st, svc.v2)
        threading.Thread(target=stdin.pump, name="adbd-stdin", daemon=True).start()
        out = _ShellWriter(st, svc, ap.ShellPacketId.STDOUT)
        err = _ShellWriter(st, svc, ap.ShellPacketId.STDERR, out.lock)
        rt = self.rt
        session = rt.procs.spawn("sh", ppid=ADBD_PID, uid=SHELL_UID)
        st.on_hangup = lambda: rt.procs.hangup(session.sid)
        try:
            code = Shell(rt, uid=SHELL_UID, cwd="/", cancel=st.cancel, proc=session).run(
                svc.command, IO(out, err, stdin.read_all))
        finally:
            rt.procs.exit(session)
        if svc.v2 and not st.closed.is_set():
            with out.lock:
                st.write(ap.pack_shell_exit(code))

    # ------------------------------------------------------------------ sync
    def _sync(self, st: Stream) -> None:
        SyncSession(self.rt.fs, st).serve()
