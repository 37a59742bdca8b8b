"""Start and stop a cell's sampler on a device; read back its timeline.

``open_sampler(device, …)`` returns a Sampler: on `local` a thread reading this machine
(:mod:`perflab.telemetry.local`); on a phone one pushed shell script run in the background
(``sampler.sh``), killed by its PID at the end and its output pulled back. Both give the same
raw lines (kept in the run folder) and the same Timeline.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Protocol

from perflab.analysis.timeline import Timeline, parse_sampler_output
from perflab.devices.base import Device
from perflab.devices.capabilities import ConfiguredDevice, HostDevice, ShellDevice
from perflab.devices.config import GpuFormat
from perflab.devices.journal import Change
from perflab.errors import DeviceError, MeasurementError
from perflab.telemetry.local import LocalSampler
from perflab.telemetry.summary import StreamConfig

_STOP_TIMEOUT_S = 15.0


class SamplerError(MeasurementError):
    """The sampler could not be started or read back (the cell goes on without telemetry)."""


class Sampler(Protocol):
    def start(self) -> None: ...

    def stop(self) -> Timeline: ...


def stream_config(device: Device) -> StreamConfig:
    """How to read this device's raw streams (units, sign, the headline thermal zone)."""
    if not isinstance(device, ConfiguredDevice):
        return StreamConfig()
    cfg = device.config
    return StreamConfig(
        gpu_freq_unit=cfg.gpu.freq_unit if cfg.gpu else "hz",
        current_unit=cfg.battery.current_unit.value if cfg.battery.current_unit is not None else None,
        discharge_sign=cfg.battery.discharge_sign,
        voltage_unit=cfg.battery.voltage_unit,
        temp_zone=cfg.thermal.gate_zone(),
    )


_SCRIPT_HEAD = """\
# perflab device sampler: one long-lived process per cell, started in the background by
# perflab and killed by its PID. Every tick reads sysfs and procfs with shell builtins only
# (read, echo, test): no process is forked per sample. It waits between ticks with
# `read -t` on a FIFO it holds open (mksh has no builtin sleep; toybox sleep would fork
# every tick; the FIFO is opened once, read-write, as fd 3, so it never blocks on open and
# never reaches EOF), falling back to sleep only when no FIFO can be made (an E line says so).
# Its lines follow perflab/analysis/timeline.py. Written for this device by perflab (paths
# quoted). It ignores SIGHUP (as nohup would) so that it outlives the adb shell that
# started it, so perflab journals it on the host before starting it, and it writes its PID
# to a file first thing (how `perflab devices restore` finds it); killed, it removes its
# FIFO and that file.
fifo=@FIFO@
me=@PIDFILE@
trap 'rm -f "$fifo" "$me" 2>/dev/null; exit 0' TERM INT
trap '' HUP
if [ -n "$me" ]; then echo $$ > "$me"; fi
echo "P $$"
rm -f "$fifo" 2>/dev/null
if mkfifo "$fifo" 2>/dev/null && exec 3<> "$fifo"; then :; else fifo=; echo 'E wait no FIFO: the sampler forks sleep every tick'; fi
pk=; pz=$(getconf PAGESIZE 2>/dev/null)
if [ -n "$pz" ]; then pk=$((pz / 1024)); fi
"""

# /proc/stat's cpu lines end where its first "i" is ("intr"): one read takes them all.
_TICK_READS = """\
  read -r up rest < /proc/uptime
  read -r -d i cpus < /proc/stat
"""


def _node_checks(nodes: dict[str, str]) -> list[str]:
    """Say once which configured nodes cannot be read (the stream is then missing, with why)."""
    return [f"if [ ! -r {shlex.quote(path)} ]; then echo {shlex.quote(f'E {stream} {path} is not readable')}; fi"
            for stream, path in nodes.items() if path]


_NAME_OK = re.compile(r"[A-Za-z0-9_.:+-]+")  # safe inside double quotes, no blank, no "="


def _grouped(kind: str, prefix: str, nodes: list[tuple[str, str]]) -> tuple[list[str], list[str], str | None]:
    """The variables, the tick lines reading ``nodes`` ((name, path)…) into them, and the
    ``kind name=value …`` line (in the tick's echo) that reports them. Names come from the phone
    (thermal zone types): a blank or ``=`` becomes ``_``, and a name with other characters is
    single-quoted into the echo, never expanded by the shell."""
    if not nodes:
        return [], [], None
    q = shlex.quote
    fields = []
    for i, (name, _) in enumerate(nodes):
        safe = re.sub(r"[\s=]", "_", name) or "_"
        fields.append(f"{safe}=${prefix}{i}" if _NAME_OK.fullmatch(safe) else f'"{q(safe + "=")}"${prefix}{i}')
    return ([f"{prefix}{i}" for i in range(len(nodes))],
            [f"  read -r {prefix}{i} < {q(path)}" for i, (_, path) in enumerate(nodes)],
            kind + " " + " ".join(fields))


def sampler_script(device: ShellDevice, interval_s: float, pid_file: str, fifo: str, *,
                   own_pid_file: str = "") -> str:
    """The sampler for this device: its nodes unrolled into the loop (each path shell-quoted),
    so the script needs no case, brace groups or parameter operators: plain POSIX sh.

    A tick reads every node into variables, then prints all its lines with one ``echo`` (one
    write: a tick is never interleaved or cut between its lines; on a phone, one system call
    instead of a dozen). A value that could not be read this tick is printed empty.
    ``own_pid_file``: where the sampler writes its own PID first thing (none when empty)."""
    q = shlex.quote
    cfg = device.config
    bat = cfg.battery
    wanted = {z.type for z in cfg.thermal.zones}
    zones = [z for z in device.thermal_zones() if not wanted or z.type in wanted]
    lines = [_SCRIPT_HEAD.rstrip("\n").replace("@FIFO@", q(fifo)).replace("@PIDFILE@", q(own_pid_file))]
    if cfg.gpu is None:
        lines.append("echo 'E gpu no GPU load node configured for this device'")
    else:
        lines += _node_checks({"gpu": cfg.gpu.busy_path, "gpufreq": cfg.gpu.freq_path or ""})
    bat_nodes = {"bat": bat.node(bat.current_now), "bat_voltage": bat.node(bat.voltage_now),
                 "bat_charge": bat.node(bat.charge_counter) if bat.charge_counter else "",
                 "bat_temp": bat.node(bat.temp) if bat.temp else "", "bat_status": bat.node(bat.status)}
    lines += _node_checks(bat_nodes)
    if not zones:
        lines.append("echo 'E tz no thermal zone of the device config was found on the phone'")
    if not cfg.cpufreq.policies:
        lines.append("echo 'E freq no cpufreq policies in the device config'")
    # Nodes of one kind: their variables emptied in one assignment, one `read` per node, one
    # line for all (`freq policy0=… policy4=…`; an empty value = not read this tick). An
    # unreadable node was reported once above; its read fails silently: each loop's standard
    # error goes to /dev/null once, at `done 2>/dev/null`, not per read (on a phone, a
    # `2>/dev/null` per read is an open and two dup2 calls, twenty times a tick).
    reads = [_TICK_READS.rstrip("\n")]
    out = ["T $up", "$cpus"]
    # every variable the tick prints, emptied in one assignment at its start: a read that fails
    # leaves its value empty (not read this tick), never the last tick's
    tick_vars = ["up", "cpus"]
    freq_vars, freq_reads, freq_line = _grouped("freq", "f", [(pol.rstrip("/").rsplit("/", 1)[-1],
                                                    pol.rstrip("/") + "/scaling_cur_freq")
                                                   for pol in cfg.cpufreq.policies])
    tick_vars += freq_vars
    reads += freq_reads
    out += [freq_line] if freq_line else []
    if cfg.gpu is not None:
        kind = {GpuFormat.KGSL_GPUBUSY: "kgsl", GpuFormat.MTK_GED: "ged", GpuFormat.PERCENT: "pct"}[cfg.gpu.format]
        tick_vars += ["g1", "g2", "g3"]
        reads.append(f"  read -r g1 g2 g3 < {q(cfg.gpu.busy_path)}")
        out.append(f"gpu {kind} $g1 $g2 $g3")
        if cfg.gpu.freq_path:
            tick_vars.append("gf")
            reads.append(f"  read -r gf rest < {q(cfg.gpu.freq_path)}")
            out.append("gpufreq $gf")
    # MemAvailable is /proc/meminfo's third line (Linux ≥ 3.14): one read to the end; the line
    # carries the key, so the parser checks it
    reads.append("  read -r -d '' k1 v1 u1 k2 v2 u2 k3 v3 rest < /proc/meminfo")
    out.append("mem $k3 $v3")
    tz_vars, tz_reads, tz_line = _grouped("tz", "t", [(z.type, z.zone + "/temp") for z in zones])
    tick_vars += ["k3", "v3", *tz_vars]
    reads += tz_reads
    out += [tz_line] if tz_line else []
    # the battery: c(urrent) v(oltage) ch(arge counter) te(mperature) st(atus, last: "Not charging")
    bat_vars = (("c", "bat"), ("v", "bat_voltage"), ("ch", "bat_charge"), ("te", "bat_temp"), ("st", "bat_status"))
    tick_vars += [f"b{var}" for var, _ in bat_vars]
    reads += [f"  read -r b{var} < {q(bat_nodes[key])}" for var, key in bat_vars if bat_nodes[key]]
    out.append("bat " + " ".join(f"{var}=$b{var}" for var, _ in bat_vars))
    reads.append('  read -r s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12 s13 ut stt cut cst rest < "/proc/$$/stat"')
    out += ["self $ut $stt $cut $cst 100", "rss $rss"]
    tick_vars += ["ut", "stt", "cut", "cst", "pid", "k", "v", "rss"]  # (k, v: the VmRSS loop's)
    reads.insert(0, "  " + " ".join(f"{name}=" for name in tick_vars))
    # The measured process's RSS: statm's resident pages (the counter VmRSS shows) × the page
    # size. The common case (a page size and a FIFO) gets a loop of its own, so no tick tests
    # for them; the other loop decides per tick (VmRSS from status, toybox sleep).
    qpid = q(pid_file)
    fast_rss = [f'  read -r pid < {qpid} && read -r sz res rest < "/proc/$pid/statm" && rss=$((res * pk))']
    any_rss = [
        f"  read -r pid < {qpid}",
        '  if [ -z "$pid" ]; then :',
        '  elif [ -n "$pk" ]; then read -r sz res rest < "/proc/$pid/statm" && rss=$((res * pk))',
        '  elif [ -r "/proc/$pid/status" ]; then',
        ('    while read -r k v u && [ "$k" != VmRSS: ]; do :; done < "/proc/$pid/status"; '
         '[ "$k" = VmRSS: ] && rss=$v'),
        "  fi",
    ]
    # every line of `out` is quote-safe inside double quotes (names sanitised or single-quoted)
    echo = '  echo "' + "\n".join(out) + '"'
    lines += ['if [ -n "$pk" ] && [ -n "$fifo" ]; then', "while :; do", *reads, *fast_rss, echo,
              f"  read -t {interval_s:.3f} -u3 z", "done 2>/dev/null", "fi",
              "while :; do", *reads, *any_rss, echo,
              f'  if [ -n "$fifo" ]; then read -t {interval_s:.3f} -u3 z; else sleep {interval_s:.3f}; fi',
              "done 2>/dev/null"]
    return "\n".join(lines) + "\n"


class PhoneSampler:
    """sampler.sh in the background on the phone; journaled before it starts (it outlives the
    adb shell that starts it, so a host killed with -9 would leave it running: ``perflab
    devices restore`` and the next run's prepare stop it); stopped by its PID; output pulled
    back."""

    def __init__(self, device: ShellDevice, interval_s: float, pid_file: str, raw_path: Path) -> None:
        self.device = device
        self.interval_s = interval_s
        self.pid_file = pid_file
        self.raw_path = raw_path
        base = device.config.workdir.rstrip("/")
        self.script = f"{base}/sampler.sh"
        self.out = f"{base}/sampler.out"
        self.fifo = f"{base}/sampler.fifo"
        self.own_pid_file = f"{base}/sampler.pid"  # the sampler writes its PID here first thing
        self.pid: str | None = None
        self._journaled: Change | None = None

    def start(self) -> None:
        dev = self.device
        script = sampler_script(dev, self.interval_s, self.pid_file, self.fifo, own_pid_file=self.own_pid_file)
        try:
            dev.stop_process(self.own_pid_file, self.script)  # one left by a host that died before journaling
            dev.dev.push_bytes(script.encode(), self.script, mode=0o755, timeout_s=dev.timeout_s)
            self._journaled = dev.journal_process(self.own_pid_file, self.script, "telemetry sampler")
            # ignored before the job starts, so it inherits it: a hangup of this adb shell (the
            # host closing the stream before the phone does) cannot end the sampler before its
            # own `trap '' HUP` has run
            cmd = f"trap '' HUP; sh {shlex.quote(self.script)} > {shlex.quote(self.out)} 2>&1 & echo $!"
            res = dev.dev.shell(cmd, timeout_s=dev.timeout_s, check=True)
        except DeviceError as exc:
            raise SamplerError(f"[{dev.serial}] the sampler could not be started: {exc}") from exc
        pid = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        if not pid.isdigit():
            raise SamplerError(f"[{dev.serial}] the sampler did not report its PID (got {res.stdout.strip()!r})")
        self.pid = pid

    def stop(self) -> Timeline:
        dev = self.device
        try:
            if self._journaled is not None:
                dev.stop_process(self.own_pid_file, self.script)
                dev.process_ended(self._journaled)
                self._journaled = None
            elif self.pid is not None:
                dev.sh(["kill", self.pid], check=False, timeout_s=_STOP_TIMEOUT_S)
            data = dev.dev.pull_bytes(self.out, timeout_s=max(dev.timeout_s, 60.0))
        except DeviceError as exc:
            raise SamplerError(f"[{dev.serial}] the sampler's output could not be read: {exc}") from exc
        text = data.decode("utf-8", errors="replace")
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self.raw_path.write_text(text, encoding="utf-8")
        return parse_sampler_output(text.splitlines())


def open_sampler(device: Device, *, interval_s: float, raw_path: Path, workdir: Path,
                 pid_file: str | None = None) -> Sampler:
    """The sampler for ``device``: the local thread (watching processes launched from
    ``workdir``) or the phone script (watching the PID the workload writes to ``pid_file``)."""
    if isinstance(device, HostDevice):
        return LocalSampler(interval_s, str(workdir), raw_path)
    if isinstance(device, ShellDevice):
        if pid_file is None:
            pid_file = f"{device.config.workdir.rstrip('/')}/benchmark_model.pid"
        return PhoneSampler(device, interval_s, pid_file, raw_path)
    raise SamplerError(f"no sampler for a device of type {type(device).__name__}")
