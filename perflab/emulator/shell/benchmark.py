"""The emulated ``benchmark_model`` as a real child process that feeds the phone's physics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from perflab.emulator import physics as ph
from perflab.emulator.shell.errors import Cancelled
from perflab.emulator.shell.registry import err
from perflab.emulator.shell.streams import IO, Writer

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


def run_benchmark_model(sh: Shell, device_path: str, args: list[str], io: IO, env: dict[str, str]) -> int:
    """Run the emulated tool as a real child process, streaming its output, feeding the physics."""
    rt = sh.rt
    child_env = dict(os.environ)
    child_env.update({
        "PERFLAB_EMU_ROOT": str(rt.fs.root),
        "PERFLAB_EMU_CWD": sh.cwd,
        "PERFLAB_EMU_PROFILE": rt.profile.name,
        "PERFLAB_EMU_UID": str(sh.uid),
        "PERFLAB_EMU_ARGV0": device_path,
    })
    for k in ("LD_LIBRARY_PATH", "ADSP_LIBRARY_PATH"):
        if k in env:
            child_env["PERFLAB_EMU_" + k] = env[k]
    cmd = [sys.executable, "-m", "perflab.emulator.benchmark_model", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env, start_new_session=True)
    proc.device_name = device_path  # type: ignore[attr-defined]
    rt.processes[proc.pid] = proc
    gpu = any(a in ("--use_gpu=true", "--use_gpu=1") for a in args) and rt.profile.delegates.gpu
    rt.physics.register_process(proc.pid, gpu=gpu)

    def pump(stream: object, writer: Writer) -> None:
        assert hasattr(stream, "read1")
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                return
            try:
                writer(chunk)
            except Exception:  # noqa: BLE001 - the reader went away; keep draining
                writer = lambda b: None

    threads = [threading.Thread(target=pump, args=(proc.stdout, io.out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, io.err), daemon=True)]
    for t in threads:
        t.start()
    cancelled = False
    try:
        while True:
            try:
                _, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                status, usage = 0, None
                break
            if _ != 0:
                break
            if sh.cancel.wait(0.05) and not cancelled:
                cancelled = True
                proc.send_signal(signal.SIGHUP)
                proc.kill()
        for t in threads:
            t.join(timeout=5)
        if usage is not None:
            # the last CPU seconds the sampler did not see yet
            done = usage.ru_utime + usage.ru_stime
            seen = rt.physics.consume_final(proc.pid)
            extra = max(0.0, done - seen)
            rt.physics.add_work(ph.Load(cpu_core_s=extra * (0.1 if gpu else 1.0), gpu_busy_s=extra if gpu else 0.0))
        proc.returncode = os.waitstatus_to_exitcode(status) if usage is not None else 0
    finally:
        rt.physics.unregister_process(proc.pid)
        rt.processes.pop(proc.pid, None)
    rc = proc.returncode
    if cancelled:
        raise Cancelled()
    if rc < 0:
        sig = -rc
        if sig == signal.SIGABRT:
            err(io, "Aborted")
        return 128 + sig
    return rc
