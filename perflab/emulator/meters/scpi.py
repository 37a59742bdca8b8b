"""Emulated SCPI battery-bypass supplies (meters.md §4): a line responder over a pty.

Models: a Keysight 66319D (``MEAS:CURR?``/``MEAS:VOLT?``), a Keysight N6705C with an N678x SMU
in channel 1 (adds ELOG: ``SENS:ELOG:*``, ``INIT:ELOG``, ``TRIG:ELOG``, ``FETC:ELOG? n`` in ASCII
or ``FORM REAL`` blocks, ``ABOR:ELOG``) and a Rigol DP832. Long and short mnemonics match
case-insensitively; unknown commands answer nothing and queue error -113 (``SYST:ERR?``).
ELOG records are exact averages of the source over each period, released as time passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from perflab.emulator.meters.base import ModelledMeter
from perflab.emulator.meters.source import LoadSource

IDNS = {
    "66319d": "Agilent Technologies,66319D,EMULATED-0,A.03.01",
    "n6705c": "Keysight Technologies,N6705C,EMULATED-MY56000001,D.03.03",
    "dp832": "RIGOL TECHNOLOGIES,DP832,EMULATED-DP8C000001,00.01.16",
}
_MEAS_WINDOW_S = 0.02
_ELOG_MIN_PERIOD_S = 102.4e-6


def _short(node: str) -> str:
    """SCPI short form: the first four letters, three if the fourth is a vowel."""
    node = node.upper()
    if len(node) <= 4:
        return node
    return node[:3] if node[3] in "AEIOU" else node[:4]


def _normalise(header: str) -> str:
    query = header.endswith("?")
    nodes = [n for n in header.rstrip("?").lstrip(":").split(":") if n]
    return ":".join(_short(n) for n in nodes) + ("?" if query else "")


class ScpiEmulator(ModelledMeter):
    kind = "scpi"
    models = IDNS

    def __init__(self, source: LoadSource, model: str = "n6705c", reply_delay_s: float = 0.0,
                 *, transport: str = "pty") -> None:
        super().__init__(source, model, reply_delay_s, transport=transport)
        self._line = bytearray()
        self.errors: list[str] = []
        self.form_real = False
        self.swapped = False
        self.elog_curr = False
        self.elog_volt = False
        self.elog_minmax = False
        self.elog_period_s = 0.1
        self.elog_armed = False
        self.elog_t0_s: float | None = None
        self.elog_fetched = 0
        self.commands: list[str] = []

    def on_bytes(self, data: bytes) -> None:
        self._line += data
        while b"\n" in self._line:
            raw, _, rest = bytes(self._line).partition(b"\n")
            self._line = bytearray(rest)
            text = raw.decode("ascii", errors="replace").strip().rstrip("\r")
            for part in (p.strip() for p in text.split(";")):
                if part:
                    self._command(part)

    def _reply(self, data: bytes) -> None:
        self.port.write_all(data)

    def _measure(self, what: str) -> float:
        now = self.now_s()
        t = np.linspace(max(0.0, now - _MEAS_WINDOW_S), now, 64)
        return float(np.mean(self.source.amps(t) if what == "CURR" else self.source.volts(t)))

    def _command(self, text: str) -> None:
        self.commands.append(text)
        header, _, args = text.partition(" ")
        cmd = _normalise(header) if not header.startswith("*") else header.upper()
        args = args.strip()
        handler = _COMMON.get(cmd) or (_ELOG.get(cmd) if self.model == "n6705c" else None)
        if handler is None and self.model == "n6705c" and cmd.startswith("SENS:ELOG:FUNC:"):
            handler = ScpiEmulator._elog_function
        if handler is None:
            self.errors.append(f'-113,"Undefined header";{text[:40]}')
            return
        handler(self, cmd, args)

    # handlers: (self, normalised command, arguments)
    def _nothing(self, cmd: str, args: str) -> None:
        pass

    def _idn(self, cmd: str, args: str) -> None:
        self._reply(IDNS[self.model].encode() + b"\n")

    def _opc(self, cmd: str, args: str) -> None:
        self._reply(b"1\n")

    def _error_query(self, cmd: str, args: str) -> None:
        self._reply((self.errors.pop(0) if self.errors else '+0,"No error"').encode() + b"\n")

    def _meas(self, cmd: str, args: str) -> None:
        if cmd == "MEAS:POW?":
            value = self._measure("CURR") * self._measure("VOLT")
        else:
            value = self._measure(cmd[5:9])
        self._reply(f"{value:+.6E}\n".encode())

    def _form(self, cmd: str, args: str) -> None:
        if args.upper() not in ("REAL", "ASC", "ASCII", "ASCII,0"):
            self.errors.append('-224,"Illegal parameter value"')
            return
        self.form_real = args.upper() == "REAL"

    def _border(self, cmd: str, args: str) -> None:
        self.swapped = args.upper().startswith("SWAP")

    def _elog_function(self, cmd: str, args: str) -> None:
        on = args.upper().split(",")[0] in ("ON", "1")
        if cmd.endswith(("CURR:MINM", "VOLT:MINM")):
            self.elog_minmax = on
        elif cmd.endswith("CURR"):
            self.elog_curr = on
        elif cmd.endswith("VOLT"):
            self.elog_volt = on
        else:
            self.errors.append('-113,"Undefined header"')

    def _elog_period(self, cmd: str, args: str) -> None:
        self.elog_period_s = max(_ELOG_MIN_PERIOD_S, float(args.split(",")[0]))

    def _elog_init(self, cmd: str, args: str) -> None:
        self.elog_armed = True
        self.elog_t0_s = None
        self.elog_fetched = 0

    def _elog_trigger(self, cmd: str, args: str) -> None:
        if self.elog_armed:
            self.elog_t0_s = self.now_s()

    def _elog_abort(self, cmd: str, args: str) -> None:
        self.elog_armed = False
        self.elog_t0_s = None

    def _elog_fetch(self, cmd: str, args: str) -> None:
        m = re.match(r"\s*(\d+)", args)
        self._fetch_elog(int(m.group(1)) if m else 1000)

    def _fetch_elog(self, max_records: int) -> None:
        values: list[float] = []
        if self.elog_t0_s is not None:
            available = int((self.now_s() - self.elog_t0_s) / self.elog_period_s) - self.elog_fetched
            for _ in range(max(0, min(max_records, available))):
                k = self.elog_fetched
                t0 = self.elog_t0_s + k * self.elog_period_s
                t = np.asarray(t0 + (np.arange(256) + 0.5) * (self.elog_period_s / 256), dtype=np.float64)
                amps, volts = self.source.amps(t), self.source.volts(t)
                if self.elog_curr:
                    values.append(float(np.mean(amps)))
                    if self.elog_minmax:
                        values += [float(np.min(amps)), float(np.max(amps))]
                if self.elog_volt:
                    values.append(float(np.mean(volts)))
                    if self.elog_minmax:
                        values += [float(np.min(volts)), float(np.max(volts))]
                self.elog_fetched += 1
        if self.form_real:
            payload = np.asarray(values, dtype="<f4" if self.swapped else ">f4").tobytes()
            length = str(len(payload)).encode()
            self._reply(b"#" + str(len(length)).encode() + length + payload + b"\n")
        else:
            self._reply(",".join(f"{v:+.6E}" for v in values).encode() + b"\n")


_Handler = Callable[[ScpiEmulator, str, str], None]
_COMMON: dict[str, _Handler] = {
    "*IDN?": ScpiEmulator._idn, "*OPC?": ScpiEmulator._opc, "SYST:ERR?": ScpiEmulator._error_query,
    "MEAS:CURR?": ScpiEmulator._meas, "MEAS:VOLT?": ScpiEmulator._meas, "MEAS:POW?": ScpiEmulator._meas,
    "FORM": ScpiEmulator._form, "FORM:BORD": ScpiEmulator._border,
    **{c: ScpiEmulator._nothing for c in ("*RST", "*CLS", "SYST:REM", "SYST:LOC", "OUTP", "INST:NSEL",
                                           "SOUR:VOLT", "SOUR:CURR")},
}
_ELOG: dict[str, _Handler] = {
    "SENS:ELOG:PER": ScpiEmulator._elog_period, "TRIG:ELOG:SOUR": ScpiEmulator._nothing,
    "INIT:ELOG": ScpiEmulator._elog_init, "TRIG:ELOG": ScpiEmulator._elog_trigger,
    "ABOR:ELOG": ScpiEmulator._elog_abort, "FETC:ELOG?": ScpiEmulator._elog_fetch,
}
