"""What a lab phone already has before perflab's first run: the benchmark tool at its configured path.

A lab provisions each phone once (``adb push benchmark_model /data/local/tmp/perflab/``);
an emulated phone comes provisioned the same way, so ``perflab emulate`` then ``perflab run``
needs no environment variable. The file is a marker: running any file named
``benchmark_model*`` on the emulated phone runs the emulated tool (see
``perflab.emulator.shell.benchmark``), so a binary pushed over it keeps working as before.

The path is the default of ``benchmark_model.remote_path`` in ``device_configs/*.yaml``
(the emulator does not import the device layer; a test checks that the two agree).
"""

from __future__ import annotations

import posixpath

from perflab.emulator.fs import SHELL_UID
from perflab.emulator.runtime import PhoneRuntime

BENCHMARK_MODEL_PATH = "/data/local/tmp/perflab/benchmark_model"
_MARKER = (b"#!/system/bin/sh\n"
           b"# perflab emulated benchmark_model: the emulated phone runs its own tool for this file\n")


def provision(rt: PhoneRuntime, benchmark_model_path: str = BENCHMARK_MODEL_PATH) -> None:
    """Install the emulated benchmark_model (mode 0755, owned by shell) unless a file is there."""
    fs = rt.fs
    if fs.exists(benchmark_model_path):
        return
    fs.mkdir(posixpath.dirname(benchmark_model_path), SHELL_UID, parents=True)
    fs.write_bytes(benchmark_model_path, _MARKER, SHELL_UID)
    fs.chmod(benchmark_model_path, 0o755, SHELL_UID)
