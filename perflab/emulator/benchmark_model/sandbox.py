"""Device paths (``/data/local/tmp/...``) of the emulated tool mapped into the phone's sandbox
on the host, from the ``PERFLAB_EMU_*`` environment the emulated shell sets."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

WRITABLE_PREFIXES = ("/data/local/tmp", "/sdcard")


@dataclass(frozen=True)
class Sandbox:
    root: Path | None
    cwd: str
    profile: str

    @classmethod
    def from_env(cls) -> Sandbox:
        root = os.environ.get("PERFLAB_EMU_ROOT")
        return cls(Path(root) if root else None, os.environ.get("PERFLAB_EMU_CWD", "/"),
                   os.environ.get("PERFLAB_EMU_PROFILE", ""))

    def device_path(self, path: str) -> str:
        joined = path if path.startswith("/") else posixpath.join(self.cwd, path)
        return posixpath.normpath(joined)

    def host(self, path: str) -> Path:
        if self.root is None:
            return Path(path)
        dev = self.device_path(path)
        host = (self.root / dev.lstrip("/")).resolve()
        if host != self.root and self.root not in host.parents:
            return self.root / "__nonexistent__"
        return host

    def writable(self, path: str) -> bool:
        if self.root is None:
            return True
        dev = self.device_path(path)
        return any(dev == p or dev.startswith(p + "/") for p in WRITABLE_PREFIXES)
