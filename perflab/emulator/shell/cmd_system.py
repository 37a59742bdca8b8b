"""System identity, properties and users: id, uname, date, getprop/setprop, su, sh."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from perflab.emulator.fs import ROOT_UID, FsError
from perflab.emulator.procs import PAGE_SIZE_BYTES
from perflab.emulator.shell.errors import SH, ExitShell, Unsupported
from perflab.emulator.shell.registry import COMMANDS, SPECIAL_BUILTINS, command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


@command("id")
def _id(sh: Shell, args: list[str], io: IO) -> int:
    if "-u" in args:
        io.out(f"{sh.uid}\n".encode())
    elif sh.uid == ROOT_UID:
        io.out(b"uid=0(root) gid=0(root) groups=0(root) context=u:r:su:s0\n")
    else:
        io.out(b"uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
               b"1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),"
               b"3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:shell:s0\n")
    return 0


@command("whoami")
def _whoami(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"root\n" if sh.uid == ROOT_UID else b"shell\n")
    return 0


@command("uptime")
def _uptime(sh: Shell, args: list[str], io: IO) -> int:
    up = int(sh.rt.uptime_s())
    load = sh.rt.snapshot().cpu_busy_cores
    io.out(f" {time.strftime('%H:%M:%S')} up {up // 86400} days, {up % 86400 // 3600:2d}:{up % 3600 // 60:02d},"
           f"  0 users,  load average: {load:.2f}, 0.50, 0.40\n".encode())
    return 0


@command("date")
def _date(sh: Shell, args: list[str], io: IO) -> int:
    now = time.time()
    fmt = next((a[1:] for a in args if a.startswith("+")), "%a %b %d %H:%M:%S %Z %Y")
    ns = f"{int(now * 1e9) % 1_000_000_000:09d}"
    text = fmt.replace("%s", str(int(now))).replace("%N", ns)
    io.out((time.strftime(text, time.localtime(now)) + "\n").encode())
    return 0


@command("nproc")
def _nproc(sh: Shell, args: list[str], io: IO) -> int:
    io.out(f"{sh.rt.profile.cpu_cores}\n".encode())
    return 0


@command("getconf")
def _getconf(sh: Shell, args: list[str], io: IO) -> int:
    if args in (["PAGESIZE"], ["PAGE_SIZE"]):
        io.out(f"{PAGE_SIZE_BYTES}\n".encode())
        return 0
    raise Unsupported("getconf " + " ".join(args))


@command("uname")
def _uname(sh: Shell, args: list[str], io: IO) -> int:
    if "-a" in args:
        io.out(b"Linux localhost 5.10.177-perflab-emulated #1 SMP PREEMPT aarch64 Toybox\n")
    elif "-r" in args:
        io.out(b"5.10.177-perflab-emulated\n")
    elif "-m" in args:
        io.out(b"aarch64\n")
    else:
        io.out(b"Linux\n")
    return 0


@command("getenforce")
def _getenforce(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"Enforcing\n")
    return 0


@command("which")
def _which(sh: Shell, args: list[str], io: IO) -> int:
    status = 0
    for a in args:
        if a in COMMANDS and a not in SPECIAL_BUILTINS:
            io.out(f"/system/bin/{a}\n".encode())
        else:
            status = 1
    return status


@command("getprop")
def _getprop(sh: Shell, args: list[str], io: IO) -> int:
    props = sh.rt.props
    if not args:
        io.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())).encode())
    else:
        io.out((props.get(args[0], args[1] if len(args) > 1 else "") + "\n").encode())
    return 0


@command("setprop")
def _setprop(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) != 2:
        err(io, "usage: setprop NAME VALUE")
        return 1
    key, value = args
    if (key.startswith("ro.") and key in sh.rt.props) or (sh.uid != ROOT_UID and not key.startswith(
            ("debug.", "persist.debug.", "log.", "sys.powerctl", "ctl."))):
        err(io, f"Failed to set property '{key}' to '{value}'.\nSee dmesg for error reason.")
        return 1
    if key == "sys.powerctl" and value.startswith("reboot"):
        if sh.rt.request_reboot is not None:
            sh.rt.request_reboot(0.2)
        return 0
    sh.rt.props[key] = value
    return 0


@command("su")
def _su(sh: Shell, args: list[str], io: IO) -> int:
    if not sh.rt.profile.rooted:
        err(io, f"{SH}: su: inaccessible or not found")
        return 127
    root = sh.child(uid=ROOT_UID)
    if args and args[0] == "-c":
        if len(args) < 2:
            err(io, "su: option requires an argument -- c")
            return 1
        return root.run(args[1], io)
    if args and args[0] in ("0", "root"):
        rest = args[1:]
        if not rest:
            return root.run(io.stdin().decode("utf-8", "replace"), io)
        try:
            return root.exec_argv(rest, io)
        except ExitShell as ex:
            return ex.code
    if not args:
        return root.run(io.stdin().decode("utf-8", "replace"), io)
    err(io, f"su: invalid uid/gid '{args[0]}'")
    return 1


@command("sh")
def _sh(sh: Shell, args: list[str], io: IO) -> int:
    sub = sh.child(variables=dict(sh.vars))
    if args and args[0] == "-c":
        if len(args) < 2:
            err(io, f"{SH}: -c: option requires an argument")
            return 2
        return sub.run(args[1], io)
    if args and args[0].startswith("-"):
        raise Unsupported(f"sh {args[0]}")
    if args:
        try:
            script = sh.rt.fs.read_bytes(sh.path(args[0]), sh.uid)
        except FsError:
            err(io, f"{SH}: {args[0]}: No such file or directory")
            return 127
        sub.own_proc().argv = ("sh", *args)  # /proc/<pid>/cmdline names the script, as on a phone
        return sub.run(script.decode("utf-8", "replace"), io)
    return sub.run(io.stdin().decode("utf-8", "replace"), io)
