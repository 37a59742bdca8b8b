"""The emulated ``benchmark_model`` as a real child process that feeds the phone's physics.

It is a process in the phone's table (its own PID, or the shell's own with ``exec``), so
``ps -A``/``pidof`` show it and ``kill`` ends it: the host child is killed at once, its
output stops, and the command returns 128+signal as under mksh.
"""

from __future__ import annotations

import os
import posixpath
import signal
import subprocess
import sys
import threading
from typing import IO as BinaryStream
from typing import TYPE_CHECKING

from perflab.emulator import physics as ph
from perflab.emulator.procs import Proc
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell.errors import Cancelled
from perflab.emulator.shell.registry import err
from perflab.emulator.shell.streams import IO, Writer

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell

#: how often the runner looks at the adb stream while the child runs
_POLL_S = 0.05


def _child_env(sh: Shell, device_path: str, env: dict[str, str]) -> dict[str, str]:
    rt = sh.rt
    child_env = dict(os.environ)
    child_env.update({
        "PERFLAB_EMU_ROOT": str(rt.fs.root),
        "PERFLAB_EMU_CWD": sh.cwd,
        "PERFLAB_EMU_PROFILE": rt.profile.name,
        "PERFLAB_EMU_UID": str(sh.uid),
        "PERFLAB_EMU_ARGV0": device_path,
        # per-layer delays a test injects (setprop debug.perflab.layer_delays_ms "c2=12,c3=6")
        "PERFLAB_EMU_LAYER_DELAYS_MS": rt.props.get("debug.perflab.layer_delays_ms", ""),
    })
    tr = rt.trace
    if tr is not None and tr.on:  # the tool writes its trace lines into the tracefs buffer
        child_env.update({
            "PERFLAB_EMU_TRACE_FILE": str(tr.buffer),
            "PERFLAB_EMU_TRACE_OFFSET_S": repr(tr.offset_s()),
            "PERFLAB_EMU_ATRACE": "1" if _atrace_on(rt.props, device_path) else "0",
        })
    for k in ("LD_LIBRARY_PATH", "ADSP_LIBRARY_PATH"):
        if k in env:
            child_env["PERFLAB_EMU_" + k] = env[k]
    return child_env


def _atrace_on(props: dict[str, str], argv0: str) -> bool:
    """Whether TFLite's ATrace sections reach the trace, as on Android: the interpreter asks for
    them (``debug.tflite.trace``) and libcutils enables app tracing for this process only on a
    debuggable build whose ``debug.atrace.app_<i>`` (i < ``debug.atrace.app_number``) names
    its cmdline, or ``*``."""
    if props.get("debug.tflite.trace") != "1" or props.get("ro.debuggable") != "1":
        return False
    try:
        count = int(props.get("debug.atrace.app_number", "0"))
    except ValueError:
        return False
    return any(props.get(f"debug.atrace.app_{i}") in ("*", argv0) for i in range(count))


def _pump(stream: BinaryStream[bytes], writer: Writer, proc: Proc) -> None:
    """Copy the child's output until it ends; nothing more once the process got a fatal signal."""
    read1 = getattr(stream, "read1", stream.read)
    while True:
        chunk = read1(65536)
        if not chunk:
            return
        if proc.killed_by is not None:
            continue
        try:
            writer(chunk)
        except Exception:  # noqa: BLE001 - the reader went away; keep draining
            writer = _drop


def _drop(data: bytes) -> None:
    del data


def _reap(rt: PhoneRuntime, host: subprocess.Popen[bytes], sh: Shell, gpu: bool) -> tuple[int, bool]:
    """Wait for the child (killing it if the adb stream goes away); (wait status, cancelled)."""
    cancelled = False
    while True:
        try:
            pid, status, usage = os.wait4(host.pid, os.WNOHANG)
        except ChildProcessError:
            return 0, cancelled
        if pid != 0:
            break
        if sh.cancel.wait(_POLL_S) and not cancelled:
            cancelled = True
            host.send_signal(signal.SIGHUP)
            host.kill()
    # the last CPU seconds the physics sampler did not see yet
    extra = max(0.0, usage.ru_utime + usage.ru_stime - rt.physics.consume_final(host.pid))
    rt.physics.add_work(ph.Load(cpu_core_s=extra * (0.1 if gpu else 1.0), gpu_busy_s=extra if gpu else 0.0))
    host.returncode = os.waitstatus_to_exitcode(status)
    return status, cancelled


def run_benchmark_model(sh: Shell, device_path: str, args: list[str], io: IO, env: dict[str, str], *,
                        in_place: bool = False) -> int:
    """Run the emulated tool as a real child process, streaming its output, feeding the physics.

    ``in_place`` (``exec``): the tool takes over the calling shell's process and PID.
    """
    rt = sh.rt
    shell_proc = sh.own_proc()
    proc = shell_proc if in_place else rt.procs.spawn(posixpath.basename(device_path), ppid=shell_proc.pid,
                                                      uid=sh.uid, sid=shell_proc.sid)
    proc.name = posixpath.basename(device_path)
    cmd = [sys.executable, "-m", "perflab.emulator.benchmark_model", *args]
    host = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_child_env(sh, device_path, env), start_new_session=True)
    proc.host = host
    rt.procs.changed()
    for signo in proc.take_signals():  # a kill that came between the PID and the child
        proc.deliver(signo)
    gpu = any(a in ("--use_gpu=true", "--use_gpu=1") for a in args) and rt.profile.delegates.gpu
    rt.physics.register_process(host.pid, gpu=gpu)
    assert host.stdout is not None and host.stderr is not None
    threads = [threading.Thread(target=_pump, args=(host.stdout, io.out, proc), daemon=True),
               threading.Thread(target=_pump, args=(host.stderr, io.err, proc), daemon=True)]
    for t in threads:
        t.start()
    try:
        _status, cancelled = _reap(rt, host, sh, gpu)
        for t in threads:
            t.join(timeout=5)
    finally:
        rt.physics.unregister_process(host.pid)
        proc.host = None
        if not in_place:
            rt.procs.exit(proc)
        rt.procs.changed()
    host.stdout.close()
    host.stderr.close()
    if cancelled:
        raise Cancelled()
    if proc.killed_by is not None:
        return 128 + proc.killed_by
    rc = host.returncode if host.returncode is not None else 0
    if rc < 0:
        if -rc == signal.SIGABRT:
            err(io, "Aborted")
        return 128 - rc
    return rc
