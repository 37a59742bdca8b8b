"""The emulated phone's filesystem: a sandbox directory mapped as ``/`` plus generated nodes.

* Real files live under ``<state_dir>/root``; a device path is normalised (``..`` can never
  leave the sandbox) and symlinks are never created or followed out of it.
* Only ``/data/local/tmp`` (and ``/sdcard``) are writable by the shell user; root may also
  write the writable generated nodes (sysfs knobs).
* ``/sys``, ``/proc`` and ``/dev/null`` are generated on read from the phone's state by
  ``VNode`` callbacks (see ``sysfs.py``).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perflab.emulator.adb_protocol import FileStat
from perflab.errors import PerflabError

WRITABLE_PREFIXES = ("/data/local/tmp", "/sdcard")
_HOST_PATH_CACHE = 8192  # resolved sandbox paths kept
REAL_DIRS = ("/data/local/tmp", "/sdcard", "/system/bin", "/vendor/lib64", "/data/local")
SHELL_UID = 2000
ROOT_UID = 0


class FsError(PerflabError):
    """A filesystem operation failed; ``errno_`` is the Linux errno it maps to."""

    def __init__(self, errno_: int, path: str) -> None:
        self.errno_ = errno_
        self.path = path
        super().__init__(f"{path}: {os.strerror(errno_)}")


class FifoReadError(FsError):
    """A FIFO was opened for reading as if it were a file (a real one would wait for a writer)."""


@dataclass
class VNode:
    """A generated file: ``read`` renders it now; ``write`` (root only) changes state."""

    read: Callable[[], bytes]
    write: Callable[[bytes], None] | None = None
    root_only_read: bool = False


def normalize(path: str, cwd: str = "/") -> str:
    """Absolute, normalised device path; ``..`` stops at ``/``."""
    if path.startswith("/") and "//" not in path and "/." not in path and not path.endswith("/"):
        return path  # already normal (the common case: a script's absolute paths)
    joined = posixpath.join(cwd, path) if not path.startswith("/") else path
    norm = posixpath.normpath(joined)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


def _read_whole(host: Path, path: str) -> bytes:
    """The bytes of the regular sandbox file ``host`` (device path ``path``), with one open."""
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FsError(exc.errno or errno.EIO, path) from None
    try:
        want = os.fstat(fd).st_size + 1
        data = os.read(fd, want)
        if len(data) < want:  # the whole file (a regular file reads short only at its end)
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class PhoneFS:
    def __init__(self, state_dir: Path) -> None:
        self.root = (state_dir / "root").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        for d in REAL_DIRS:
            (self.root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.vnodes: dict[str, VNode] = {}
        self.hidden: set[str] = set()
        self._vdirs: set[str] = set()
        self._host_paths: dict[str, Path] = {}
        #: generated subtrees whose files come and go (``/proc/<pid>/…``): base -> current files
        self._dynamic: dict[str, Callable[[], dict[str, VNode]]] = {}
        #: their one-path lookups (file, directory), where given: a sampler reads /proc/<pid>/stat
        #: ten times a second, and building every process's files for it is most of its cost
        self._dynamic_lookup: dict[str, tuple[Callable[[str], VNode | None], Callable[[str], bool]]] = {}

    # ------------------------------------------------------------------ nodes
    def add_dynamic(self, base: str, files: Callable[[], dict[str, VNode]],
                    lookup: tuple[Callable[[str], VNode | None], Callable[[str], bool]] | None = None) -> None:
        """Files under ``base`` computed on each access, by path relative to it (``"3100/status"``).
        ``lookup`` = (the file at a relative path, whether a relative path is a directory), found
        without building them all; it must agree with ``files``."""
        self._dynamic[base] = files
        if lookup is not None:
            self._dynamic_lookup[base] = lookup

    def _dynamic_node(self, path: str) -> VNode | None:
        for base, files in self._dynamic.items():
            if path.startswith(base + "/"):
                rel = path[len(base) + 1:]
                lookup = self._dynamic_lookup.get(base)
                return lookup[0](rel) if lookup is not None else files().get(rel)
        return None

    def _dynamic_dir(self, path: str) -> bool:
        for base, files in self._dynamic.items():
            if path.startswith(base + "/"):
                rel = path[len(base) + 1:]
                lookup = self._dynamic_lookup.get(base)
                return lookup[1](rel) if lookup is not None else any(f.startswith(rel + "/") for f in files())
        return False

    def add_node(self, path: str, node: VNode) -> None:
        self.vnodes[path] = node
        parent = posixpath.dirname(path)
        while parent not in ("", "/"):
            self._vdirs.add(parent)
            parent = posixpath.dirname(parent)

    def hide(self, path: str) -> None:
        """Fault injection: make a node (or a whole subtree) vanish."""
        self.hidden.add(normalize(path))

    def _is_hidden(self, path: str) -> bool:
        return bool(self.hidden) and any(path == h or path.startswith(h + "/") for h in self.hidden)

    def vnode(self, path: str) -> VNode | None:
        if self._is_hidden(path):
            return None
        node = self.vnodes.get(path)
        if node is None and self._dynamic:
            node = self._dynamic_node(path)
        return node

    def is_vdir(self, path: str) -> bool:
        if path in ("/sys", "/proc", "/dev") or (path in self._vdirs and not self._is_hidden(path)):
            return True
        return bool(self._dynamic) and self._dynamic_dir(path)

    # ------------------------------------------------------------------ mapping
    def host_path(self, path: str) -> Path:
        """The sandbox file behind a device path (no check that it exists). Resolved once per
        path: the phone can create no symlink, so the answer cannot change (a sampler asks for
        the same few paths ten times a second)."""
        norm = normalize(path)
        host = self._host_paths.get(norm)
        if host is None:
            host = (self.root / norm.lstrip("/")).resolve()
            if host != self.root and self.root not in host.parents:
                raise FsError(errno.EACCES, path)
            if len(self._host_paths) < _HOST_PATH_CACHE:
                self._host_paths[norm] = host
        return host

    @staticmethod
    def writable_by(path: str, uid: int) -> bool:
        del uid  # both shell and root write only the scratch areas of the real tree
        return any(path == p or path.startswith(p + "/") for p in WRITABLE_PREFIXES)

    # ------------------------------------------------------------------ queries
    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and statmod.S_ISDIR(st.mode)

    def is_file(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and statmod.S_ISREG(st.mode)

    def stat(self, path: str) -> FileStat | None:
        path = normalize(path)
        if path == "/dev/null":
            return FileStat(mode=statmod.S_IFCHR | 0o666, size=0, mtime_s=0)
        node = self.vnode(path)
        if node is not None:
            mode = statmod.S_IFREG | (0o644 if node.write else 0o444)
            return FileStat(mode=mode, size=4096, mtime_s=0)
        if self.is_vdir(path):
            return FileStat(mode=statmod.S_IFDIR | 0o555, size=0, mtime_s=0, nlink=2)
        if self._is_hidden(path):
            return None
        host = self.host_path(path)
        try:
            st = os.lstat(host)
        except OSError:
            return None
        if statmod.S_ISLNK(st.st_mode):
            return None
        uid = SHELL_UID if self.writable_by(path, SHELL_UID) else ROOT_UID
        return FileStat(
            mode=st.st_mode, size=st.st_size, mtime_s=int(st.st_mtime), dev=st.st_dev, ino=st.st_ino,
            nlink=st.st_nlink, uid=uid, gid=uid, atime_s=int(st.st_atime), ctime_s=int(st.st_ctime),
        )

    def listdir(self, path: str) -> list[str]:
        path = normalize(path)
        names: set[str] = set()
        if self.is_vdir(path) or path == "/":
            prefix = path.rstrip("/") + "/"
            for p in list(self.vnodes) + list(self._vdirs):
                if p.startswith(prefix) and not self._is_hidden(p):
                    names.add(p[len(prefix):].split("/", 1)[0])
            if path == "/":
                names.update({"sys", "proc", "dev"})
            for base, files in self._dynamic.items():
                if path == base or path.startswith(base + "/"):
                    rel = "" if path == base else path[len(base) + 1:] + "/"
                    names.update(f[len(rel):].split("/", 1)[0] for f in files() if f.startswith(rel))
        host = self.host_path(path)
        if host.is_dir() and not self._is_hidden(path):
            names.update(n for n in os.listdir(host) if not (host / n).is_symlink())
        elif not names:
            if self.is_file(path):
                raise FsError(errno.ENOTDIR, path)
            raise FsError(errno.ENOENT, path)
        return sorted(names)

    # ------------------------------------------------------------------ I/O
    def read_bytes(self, path: str, uid: int) -> bytes:
        path = normalize(path)
        if path == "/dev/null":
            return b""
        node = self.vnode(path)
        if node is not None:
            if node.root_only_read and uid != ROOT_UID:
                raise FsError(errno.EACCES, path)
            return node.read()
        if self.is_vdir(path):
            raise FsError(errno.EISDIR, path)
        if self._is_hidden(path):
            raise FsError(errno.ENOENT, path)
        # The sandbox file's type from lstat (a symlink is never followed, as stat() refuses one;
        # a FIFO is refused without being opened), then one open and its bytes: a sampler reads
        # a PID file ten times a second.
        host = self.host_path(path)
        try:
            mode = os.lstat(host).st_mode
        except OSError:
            raise FsError(errno.ENOENT, path) from None
        if statmod.S_ISLNK(mode):
            raise FsError(errno.ENOENT, path)
        if statmod.S_ISDIR(mode):
            raise FsError(errno.EISDIR, path)
        if statmod.S_ISFIFO(mode):  # would wait for a writer forever: say so instead
            raise FifoReadError(errno.EAGAIN, path)
        return _read_whole(host, path)

    def is_fifo(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and statmod.S_ISFIFO(st.mode)

    def mkfifo(self, path: str, uid: int, mode: int = 0o666) -> None:
        """A named pipe in the sandbox (a real one: the shell's ``<>`` opens it for real)."""
        path = normalize(path)
        if self.exists(path):
            raise FsError(errno.EEXIST, path)
        if not self.is_dir(posixpath.dirname(path)):
            raise FsError(errno.ENOENT, path)
        if not self.writable_by(path, uid) or self.vnode(path) is not None:
            raise FsError(errno.EACCES, path)
        os.mkfifo(self.host_path(path), mode & 0o777)

    def open_fifo(self, path: str, uid: int) -> int | None:
        """``<> fifo``: open read-write (which never waits for a peer on Linux), non-blocking;
        None when ``path`` is not a FIFO (the caller opens it as a file)."""
        path = normalize(path)
        if self.vnode(path) is not None or self.is_vdir(path):
            return None
        host = self.host_path(path)
        try:
            if not statmod.S_ISFIFO(os.lstat(host).st_mode):
                return None
        except OSError:
            return None
        if not self.writable_by(path, uid):
            raise FsError(errno.EACCES, path)
        return os.open(host, os.O_RDWR | os.O_NONBLOCK)

    def write_bytes(self, path: str, data: bytes, uid: int, *, append: bool = False) -> None:
        path = normalize(path)
        if path == "/dev/null":
            return
        node = self.vnode(path)
        if node is not None:
            if node.write is None or uid != ROOT_UID:
                raise FsError(errno.EACCES, path)
            node.write(data)
            return
        with self.open_file(path, uid, append=append) as fh:
            fh.write(data)

    def open_file(self, path: str, uid: int, *, append: bool) -> io.FileIO:
        """Open a real file for writing once, as a shell's ``>``/``>>`` redirection does: the checks
        happen at open, every later write is one unbuffered write to that descriptor."""
        path = normalize(path)
        if self.is_vdir(path) or path.startswith(("/sys/", "/proc/")):
            raise FsError(errno.EACCES if self.is_vdir(posixpath.dirname(path)) else errno.ENOENT, path)
        self._check_file_writable(path, uid)
        host = self.host_path(path)
        return open(host, "ab" if append else "wb", buffering=0)

    def open_for_write(self, path: str, uid: int, mode: int = 0o644) -> Path:
        """Check permissions for a streamed write (sync SEND); returns the sandbox path."""
        path = normalize(path)
        if self.vnode(path) is not None or self.is_vdir(path):
            raise FsError(errno.EACCES, path)
        self._check_file_writable(path, uid)
        del mode
        return self.host_path(path)

    def _check_file_writable(self, path: str, uid: int) -> None:
        """The checks every write to a real file makes: its folder exists, ``uid`` may write it,
        and it is not a folder itself."""
        if not self.is_dir(posixpath.dirname(path)):
            raise FsError(errno.ENOENT, path)
        if not self.writable_by(path, uid):
            raise FsError(errno.EACCES if uid != ROOT_UID else errno.EROFS, path)
        if self.is_dir(path):
            raise FsError(errno.EISDIR, path)

    def mkdir(self, path: str, uid: int, *, parents: bool = False) -> None:
        path = normalize(path)
        if self.exists(path):
            if parents and self.is_dir(path):
                return
            raise FsError(errno.EEXIST, path)
        parent = posixpath.dirname(path)
        if not self.is_dir(parent):
            if not parents:
                raise FsError(errno.ENOENT, path)
            self.mkdir(parent, uid, parents=True)
        if not self.writable_by(path, uid):
            raise FsError(errno.EACCES, path)
        self.host_path(path).mkdir()

    def rmdir(self, path: str, uid: int) -> None:
        """``rmdir``: an empty real directory in the scratch areas (generated trees refuse)."""
        norm = normalize(path)
        if self.stat(norm) is None:
            raise FsError(errno.ENOENT, norm)
        if not self.is_dir(norm):
            raise FsError(errno.ENOTDIR, norm)
        if self.is_vdir(norm) or not self.writable_by(norm, uid) or norm in WRITABLE_PREFIXES:
            raise FsError(errno.EACCES, norm)
        try:
            self.host_path(norm).rmdir()
        except OSError as exc:
            raise FsError(exc.errno or errno.EIO, norm) from None

    def remove(self, path: str, uid: int, *, recursive: bool = False) -> None:
        path = normalize(path)
        st = self.stat(path)
        if st is None:
            raise FsError(errno.ENOENT, path)
        if self.vnode(path) is not None or self.is_vdir(path) or not self.writable_by(path, uid) \
                or path in WRITABLE_PREFIXES:
            raise FsError(errno.EACCES, path)
        host = self.host_path(path)
        if statmod.S_ISDIR(st.mode):
            if not recursive:
                raise FsError(errno.EISDIR, path)
            shutil.rmtree(host)
        else:
            host.unlink()

    def chmod(self, path: str, mode: int, uid: int) -> None:
        path = normalize(path)
        if self.stat(path) is None:
            raise FsError(errno.ENOENT, path)
        if not self.writable_by(path, uid) or self.vnode(path) is not None:
            raise FsError(errno.EPERM, path)
        os.chmod(self.host_path(path), mode & 0o777)

    def rename(self, src: str, dst: str, uid: int) -> None:
        src, dst = normalize(src), normalize(dst)
        if self.stat(src) is None:
            raise FsError(errno.ENOENT, src)
        if not (self.writable_by(src, uid) and self.writable_by(dst, uid)) or src in WRITABLE_PREFIXES:
            raise FsError(errno.EACCES, dst)
        if self.is_dir(dst):
            dst = posixpath.join(dst, posixpath.basename(src))
        os.replace(self.host_path(src), self.host_path(dst))
