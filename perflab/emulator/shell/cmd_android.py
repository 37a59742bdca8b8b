"""Android tools: cmd, settings, svc, input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perflab.emulator.shell.cmd_process import reboot_now
from perflab.emulator.shell.dumpsys import battery_command
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


@command("cmd")
def _cmd(sh: Shell, args: list[str], io: IO) -> int:
    if args and args[0] == "battery":
        return battery_command(sh, args[1:], io, "cmd battery")
    if args and args[0] == "settings":
        return _settings(sh, args[1:], io)
    if not args:
        err(io, "cmd: No service specified; use -l to list all running services.")
        return 20
    raise Unsupported(f"cmd {args[0]}")


@command("settings")
def _settings(sh: Shell, args: list[str], io: IO) -> int:
    args = list(args)
    if len(args) >= 2 and args[0] == "--user":
        args = args[2:]
    if len(args) < 3 or args[0] not in ("get", "put", "delete") or args[1] not in sh.rt.settings:
        err(io, "Invalid command: " + " ".join(args))
        return 255
    op, ns, key = args[0], args[1], args[2]
    table = sh.rt.settings[ns]
    if op == "get":
        io.out((table.get(key, "null") + "\n").encode())
    elif op == "put":
        if len(args) < 4:
            err(io, "Invalid command: put requires a value")
            return 255
        table[key] = args[3]
        if ns == "global" and key == "stay_on_while_plugged_in":
            sh.rt.stay_on = "false" if args[3] == "0" else "true"
    else:
        io.out(f"Deleted {1 if table.pop(key, None) is not None else 0} rows\n".encode())
    return 0


@command("svc")
def _svc(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) >= 3 and args[0] == "power" and args[1] == "stayon" and args[2] in ("true", "false", "usb", "ac",
                                                                                       "wireless"):
        sh.rt.stay_on = args[2]
        sh.rt.settings["global"]["stay_on_while_plugged_in"] = {"false": "0", "true": "7", "ac": "1", "usb": "2",
                                                                 "wireless": "4"}[args[2]]
        return 0
    if len(args) >= 2 and args[0] == "power" and args[1] == "reboot":
        return reboot_now(sh, [], io)
    raise Unsupported("svc " + " ".join(args[:2]))


_KEYCODES = {"KEYCODE_POWER": 26, "KEYCODE_WAKEUP": 224, "KEYCODE_SLEEP": 223, "KEYCODE_HOME": 3,
             "KEYCODE_BACK": 4, "KEYCODE_MENU": 82}


@command("input")
def _input(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) == 2 and args[0] == "keyevent":
        code = _KEYCODES.get(args[1]) if not args[1].isdigit() else int(args[1])
        if code is None:
            err(io, f"Error: Unknown keycode {args[1]}")
            return 1
        if code == 26:
            sh.rt.screen_on = not sh.rt.screen_on
        elif code == 224:
            sh.rt.screen_on = True
        elif code == 223:
            sh.rt.screen_on = False
        return 0
    raise Unsupported("input " + " ".join(args[:1]))
