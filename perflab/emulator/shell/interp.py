"""The interpreter: runs a parsed script against one phone's runtime, as one shell process.

A ``Shell`` is one process in the phone's process table (``$$``). Signals sent to it with
``kill`` are noticed between commands and while it sleeps or waits: a trapped signal runs its
``trap`` action, an ignored one is dropped, any other ends the shell with 128+signal (as mksh
does). Background jobs (``&``) are processes of their own, run on threads.
"""

from __future__ import annotations

import errno as errno_mod
import os
import posixpath
import re
import signal
import stat as statmod
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import NamedTuple

from perflab.emulator.fs import ROOT_UID, SHELL_UID, FifoReadError, FsError, normalize
from perflab.emulator.procs import ADBD_PID, DEFAULT_IGNORED, Proc
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import arith
from perflab.emulator.shell import expand as expand_mod
from perflab.emulator.shell.cmd_builtins import ReadArgs, read_args, read_input
from perflab.emulator.shell.errors import (
    SH,
    Cancelled,
    ExitShell,
    Killed,
    LoopControl,
    ShellError,
    ShellSyntaxError,
    Unsupported,
    WriteError,
)
from perflab.emulator.shell.lexer import ARITH, CMD, QARITH, QCMD, Seg, Word
from perflab.emulator.shell.parser import AndOr, Command, For, If, Loop, Pipeline, Redir, Simple, parse
from perflab.emulator.shell.registry import COMMANDS, REFUSED, Cmd
from perflab.emulator.shell.streams import IO, FifoInput, Input, Writer, const_input, discard, safe_writer

_PATH = "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin"
EXIT_TRAP = 0
#: a shell blocked in sleep/wait looks at its adb stream this often when no signal wakes it
_POLL_S = 0.25
_DOLLAR_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*|[?$#!])\}?")


class _RedirectFailed(Exception):
    """A redirection failed and was reported; the command does not run (status 1)."""


_FIFO_AS_FILE = "< on a FIFO (waits for a writer; use <>)"


def _open_failed(op: str, exc: FsError) -> bytes:
    """mksh's message when a redirection cannot open its file."""
    verb = "open" if op in ("<", "<>") else "create"
    return f"{SH}: can't {verb} {exc.path}: {os.strerror(exc.errno_)}\n".encode()


class _ReadStep(NamedTuple):
    """``read names < /abs/path`` with constant words: the file read and split in one step.
    ``parts``: the path as (is a variable, text) pieces when it has ``"$var"``s in it."""
    path: str
    parts: tuple[tuple[bool, str], ...] | None
    args: ReadArgs


class _ReadFdStep(NamedTuple):
    """``read -uN …`` (N ≥ 3, no redirection): the descriptor read in one step (a sampler's
    ``read -t`` wait); ``cmd`` runs the general way when N is not open."""
    cmd: Simple
    args: ReadArgs


class _AssignStep(NamedTuple):
    """``a=const b=``: one dict update."""
    values: dict[str, str]


class _SimpleStep(NamedTuple):
    """One foreground simple command: no and-or or pipeline steps."""
    cmd: Simple


class _ChainStep(NamedTuple):
    """``a && b || c`` of simple commands: (operator, step) each, the first operator None."""
    parts: tuple[tuple[str | None, _ReadStep | _ReadFdStep | _AssignStep | _SimpleStep], ...]


_GENERAL = ("general",)  # anything else: the general path
_Step = _ReadStep | _ReadFdStep | _AssignStep | _SimpleStep


def _prepare(ao: AndOr) -> object:
    """How run_list runs ``ao`` (one of the steps above), worked out on its first run."""
    if ao.background:
        return _GENERAL
    steps: list[tuple[str | None, _Step]] = []
    for op, pl in ao.parts:
        if len(pl.cmds) != 1 or pl.negate or not isinstance(pl.cmds[0], Simple):
            return _GENERAL
        steps.append((op, _simple_step(pl.cmds[0])))
    return steps[0][1] if len(steps) == 1 else _ChainStep(tuple(steps))


def _simple_step(simple: Simple) -> _Step:
    if simple.assigns and not simple.words and not simple.redirs:
        values: dict[str, str] = {}
        for name, word in simple.assigns:
            static = word.static_fields
            if static is None:
                return _SimpleStep(simple)
            values[name] = " ".join(static)
        return _AssignStep(values)
    argv = simple.static_argv
    args = read_args(argv[1:]) if argv is not None and argv[0] == "read" else None
    if args is not None and args.fd >= 3 and not simple.redirs:
        return _ReadFdStep(simple, args)
    if args is not None and args.fd == 0 and len(simple.redirs) == 1:
        r = simple.redirs[0]
        if r.op != "<" or r.fd != 0:
            return _SimpleStep(simple)
        static, parts = r.target.static_fields, r.target.quoted_parts
        if static is not None and len(static) == 1 and static[0].startswith("/"):
            return _ReadStep(normalize(static[0]), None, args)
        if parts is not None and not parts[0][0] and parts[0][1].startswith("/"):  # "/proc/$pid/statm"
            return _ReadStep("", parts, args)
    return _SimpleStep(simple)


@dataclass(eq=False)
class Job:
    """A background job of this shell (``cmd &``)."""

    proc: Proc
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0


class Shell:
    """One shell process (one ``adb shell`` stream, a nested ``sh -c``, a background job)."""

    def __init__(self, rt: PhoneRuntime, *, uid: int = SHELL_UID, cwd: str = "/",
                 cancel: threading.Event | None = None, variables: dict[str, str] | None = None,
                 proc: Proc | None = None, parent: Shell | None = None) -> None:
        self.rt = rt
        self.uid = uid
        self.cwd = cwd
        self.vars: dict[str, str] = {"PATH": _PATH, "HOME": "/", "SHELL": SH,
                                     "USER": "root" if uid == ROOT_UID else "shell"}
        if variables:
            self.vars.update(variables)
        self.status = 0
        self.cancel = cancel or threading.Event()
        self.parent = parent
        #: this shell's process; given (adbd's session, a job) or made by ``run`` and ended with it
        self.proc = proc
        self._owns_proc = proc is None
        #: ``$$``: the PID of the shell the user started (subshells keep their parent's)
        self.dollar_pid: int | None = None
        self.traps: dict[int, str] = {}
        self.loop_depth = 0  # enclosing while/until/for loops (for break and continue)
        self.jobs: dict[int, Job] = {}
        self.last_bg_pid: int | None = None
        #: the background job is one simple command: it becomes that command, as mksh's fork+exec
        self.exec_simple = False
        self._exec_next = False
        self.cmd_env: dict[str, str] = {}
        self._subst_status: int | None = None
        self._err: Writer = discard
        self._io = IO(discard, discard, const_input(b""))
        #: input descriptors this shell opened with ``exec N<> file`` (read with ``read -uN``)
        self.fds: dict[int, Input] = {}
        self._fd_files = ExitStack()

    def child(self, *, uid: int | None = None, variables: dict[str, str] | None = None) -> Shell:
        """A new shell process started by this one (``sh -c``, ``su``, a script): a PID of its own,
        or this shell's own under ``exec``."""
        proc = self.proc if self._exec_next else None
        self._exec_next = False
        sub = Shell(self.rt, uid=self.uid if uid is None else uid, cwd=self.cwd, cancel=self.cancel,
                    variables=variables, parent=self, proc=proc)
        sub.traps = self.ignored_signals()
        return sub

    def subshell(self, proc: Proc | None = None) -> Shell:
        """A copy of this shell in a new process (``$(…)``, ``&``): same variables, same ``$$``."""
        sub = Shell(self.rt, uid=self.uid, cwd=self.cwd, cancel=self.cancel, variables=dict(self.vars),
                    proc=proc, parent=self)
        sub.dollar_pid = self.pid
        sub._owns_proc = True
        sub.traps = self.ignored_signals()
        return sub

    def ignored_signals(self) -> dict[int, str]:
        """What a new process of this shell starts with: the signals it ignores (``trap ''``)
        stay ignored across fork and exec, as the kernel keeps SIG_IGN; trapped ones go back to
        their default. So ``trap '' HUP; sh job.sh &`` starts a job that a hangup cannot end even
        before the job has run a line of its own."""
        return {signo: "" for signo, action in self.traps.items() if action == "" and signo != EXIT_TRAP}

    @property
    def pid(self) -> int:
        return self.dollar_pid if self.dollar_pid is not None else self.own_proc().pid

    def own_proc(self) -> Proc:
        """This shell's process, entered in the phone's table on first use."""
        if self.proc is None:
            ppid = self.parent.proc.pid if self.parent is not None and self.parent.proc is not None else ADBD_PID
            sid = self.parent.proc.sid if self.parent is not None and self.parent.proc is not None else None
            self.proc = self.rt.procs.spawn("sh", ppid=ppid, uid=self.uid, sid=sid)
        return self.proc

    # ---------------------------------------------------------------- entry point
    def run(self, script: str, io: IO) -> int:
        try:
            tree = parse(script)
        except Unsupported as exc:
            io.err(f"{exc}\n".encode())
            self.status = 127
            return 127
        except ShellSyntaxError as exc:
            io.err(f"{SH}: {exc}\n".encode())
            self.status = 2
            return 2
        return self.run_tree(tree, io)

    def run_tree(self, tree: list[AndOr], io: IO) -> int:
        self.own_proc().on_this_thread()
        self._err = io.err
        self._io = io
        try:
            self._guarded(lambda: self.run_list(tree, io), io)
            if EXIT_TRAP in self.traps:
                action = self.traps.pop(EXIT_TRAP)
                saved = self.status
                if not self._guarded(lambda: self.run_trap_action(action, io), io):
                    self.status = saved  # the script's status, unless the trap itself called exit
        finally:
            self.fds.clear()
            self._fd_files.close()
            if self._owns_proc and self.proc is not None:
                self.rt.procs.exit(self.proc)
        return self.status

    def _guarded(self, body: Callable[[], object], io: IO) -> bool:
        """Run ``body``, turning how a shell ends into its status; True when it called ``exit``."""
        try:
            body()
        except ExitShell as ex:
            self.status = ex.code
            return True
        except Unsupported as exc:
            io.err(f"{exc}\n".encode())
            self.status = 127
        except ShellError as exc:
            io.err(f"{SH}: {exc}\n".encode())
            self.status = exc.status
        except Killed as exc:
            self.status = 128 + exc.signo
            if exc.signo == signal.SIGKILL:
                self.traps.pop(EXIT_TRAP, None)
        except Cancelled:
            self.status = 130
            self.traps.pop(EXIT_TRAP, None)
        return False

    # ---------------------------------------------------------------- signals
    def check_cancel(self) -> None:
        """Between commands: stop if the adb stream went away; act on pending signals."""
        if self.cancel.is_set():
            raise Cancelled()
        proc = self.proc
        if proc is not None and proc.pending:
            for signo in proc.take_signals():
                self._on_signal(signo)

    def _on_signal(self, signo: int) -> None:
        action = self.traps.get(signo)
        if signo == signal.SIGKILL or (action is None and signo not in DEFAULT_IGNORED):
            raise Killed(signo)
        if action:
            saved = self.status
            self.run_trap_action(action, None)
            self.status = saved

    def run_trap_action(self, action: str, io: IO | None) -> None:
        """A trap's action, in this shell, on the streams of the command it interrupted."""
        self.run_list(parse(action), io or self._io)

    def fatal_signal_pending(self) -> int | None:
        """A pending signal that would end this shell now (no trap, not ignored), if any."""
        proc = self.proc
        if proc is None:
            return None
        for signo in list(proc.pending):
            if signo == signal.SIGKILL or (signo not in self.traps and signo not in DEFAULT_IGNORED):
                return signo
        return None

    def sleep(self, seconds: float) -> None:
        """Sleep like toybox ``sleep`` under mksh: a trapped signal waits until it ends, others kill now."""
        proc = self.own_proc()
        deadline = time.monotonic() + seconds
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            signo = self.fatal_signal_pending()
            if signo is not None:
                proc.take_signals()
                raise Killed(signo)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            proc.wake.clear()
            if not proc.pending:
                proc.wake.wait(min(remaining, _POLL_S))

    # ---------------------------------------------------------------- lists and jobs
    def run_list(self, items: list[AndOr], io: IO) -> int:
        for ao in items:
            step = ao.prepared
            if step is None:
                step = ao.prepared = _prepare(ao)
            if self.exec_simple:  # a job that is one command: it becomes that command (_run_simple)
                step = _GENERAL
            if isinstance(step, (_ReadStep, _ReadFdStep, _AssignStep, _SimpleStep)):
                self._run_step(step, io)
            elif isinstance(step, _ChainStep):  # what _run_andor does
                for op, part in step.parts:
                    if (op == "&&" and self.status != 0) or (op == "||" and self.status == 0):
                        continue
                    self._run_step(part, io)
            elif ao.background:
                self._start_job(ao, io)
            else:
                self._run_andor(ao, io)
        return self.status

    def _run_step(self, step: _Step, io: IO) -> None:
        """One simple command, as _run_pipeline → _run_command would run it."""
        self.check_cancel()
        if isinstance(step, _ReadStep):
            path = step.path if step.parts is None else \
                normalize(expand_mod.quoted_text(self, step.parts))
            self.status = self._read_file(path, step.args, io)
        elif isinstance(step, _ReadFdStep):
            inp = self.fds.get(step.args.fd)
            if inp is None:
                self.status = self._run_simple(step.cmd, io)
            else:
                self._err = io.err
                self.cmd_env = {}
                self._exec_next = False
                self.status = read_input(self, step.args, inp)
        elif isinstance(step, _AssignStep):
            self._err = io.err
            self._subst_status = None
            self.vars.update(step.values)
            self.status = 0
        else:
            self.status = self._run_simple(step.cmd, io)

    def _read_file(self, path: str, args: ReadArgs, io: IO) -> int:
        """``read -r … < /file``, as _run_simple → _apply_redirs → the builtin would run it, in
        one step: a sampler runs twenty of these a tick."""
        self._err = io.err
        self.cmd_env = {}
        self._exec_next = False
        try:
            data = self.rt.fs.read_bytes(path, self.uid)
        except FifoReadError:
            raise Unsupported(_FIFO_AS_FILE) from None
        except FsError as exc:
            io.err(_open_failed("<", exc))
            return 1
        return read_input(self, args, Input.of(data))

    def _start_job(self, ao: AndOr, io: IO) -> None:
        me = self.own_proc()
        single = len(ao.parts) == 1 and len(ao.parts[0][1].cmds) == 1 and not ao.parts[0][1].negate \
            and isinstance(ao.parts[0][1].cmds[0], Simple)
        proc = self.rt.procs.spawn("sh", ppid=me.pid, uid=self.uid, sid=me.sid)
        sub = self.subshell(proc)
        # A job outlives the stream that started it, as on a phone: when the stream closes, the
        # session's hangup sends it SIGHUP (procs.hangup), which ends it unless it ignores
        # SIGHUP (`trap '' HUP`, what nohup does) — not the stream's own cancel flag.
        sub.cancel = threading.Event()
        sub.exec_simple = single
        job = Job(proc)
        quiet = AndOr(ao.parts)
        job_io = IO(safe_writer(io.out), safe_writer(io.err), const_input(b""))

        def run() -> None:
            try:
                job.status = sub.run_tree([quiet], job_io)
            finally:
                job.done.set()
                me.wake.set()

        self.jobs[proc.pid] = job
        self.last_bg_pid = proc.pid
        threading.Thread(target=run, name=f"emu-job-{proc.pid}", daemon=True).start()
        self.status = 0

    def wait_job(self, job: Job) -> int:
        """``wait``: until the job ends; a trapped signal interrupts it (status 128+signal)."""
        me = self.own_proc()
        while True:
            me.wake.clear()
            if job.done.is_set():
                return job.status
            if self.cancel.is_set():
                raise Cancelled()
            interrupted = [signo for signo in me.take_signals() if self._interrupts_wait(signo)]
            if interrupted:
                return 128 + interrupted[-1]
            me.wake.wait(_POLL_S)

    def _interrupts_wait(self, signo: int) -> bool:
        """Act on a signal that came during ``wait``: True when a trap ran (that ends the wait)."""
        self._on_signal(signo)  # raises for a fatal one
        return bool(self.traps.get(signo))

    def _run_andor(self, ao: AndOr, io: IO) -> int:
        for op, pl in ao.parts:
            if op == "&&" and self.status != 0:
                continue
            if op == "||" and self.status == 0:
                continue
            self._run_pipeline(pl, io)
        return self.status

    def _run_pipeline(self, pl: Pipeline, io: IO) -> int:
        if len(pl.cmds) == 1 and not pl.negate:  # the common case: one command, same streams
            self.status = self._run_command(pl.cmds[0], io)
            return self.status
        self.check_cancel()
        cur = io
        status = 0
        for idx, cmd in enumerate(pl.cmds):
            if idx == len(pl.cmds) - 1:
                status = self._run_command(cmd, cur.with_output(io.out, io.err))
            else:
                buf = bytearray()
                status = self._run_command(cmd, cur.with_output(buf.extend, io.err))
                cur = IO(io.out, io.err, const_input(bytes(buf)))
        if pl.negate:
            status = 0 if status != 0 else 1
        self.status = status
        return status

    def _run_command(self, cmd: Command, io: IO) -> int:
        self.check_cancel()
        if isinstance(cmd, Simple):
            return self._run_simple(cmd, io)
        if not cmd.redirs:
            return self._run_compound(cmd, io)
        with ExitStack() as files:
            try:
                io = self._apply_redirs(cmd.redirs, io, files)
            except _RedirectFailed:
                self.status = 1
                return 1
            return self._run_compound(cmd, io)

    def _run_compound(self, cmd: If | Loop | For, io: IO) -> int:
        if isinstance(cmd, If):
            return self._run_if(cmd, io)
        if isinstance(cmd, Loop):
            return self._run_loop(cmd, io)
        return self._run_for(cmd, io)

    def _run_if(self, cmd: If, io: IO) -> int:
        for cond, body in cmd.branches:
            self.run_list(cond, io)
            if self.status == 0:
                return self.run_list(body, io)
        if cmd.orelse is not None:
            return self.run_list(cmd.orelse, io)
        self.status = 0
        return 0

    def _body(self, body: list[AndOr], io: IO) -> tuple[int, bool]:
        """Run a loop body: (its status, whether the loop goes on). ``break``/``continue`` for an
        outer loop pass through with one level fewer."""
        self.loop_depth += 1
        try:
            return self.run_list(body, io), True
        except LoopControl as ctl:
            if ctl.levels > 1:
                raise LoopControl(ctl.levels - 1, again=ctl.again) from None
            return 0, ctl.again
        finally:
            self.loop_depth -= 1

    def _run_loop(self, cmd: Loop, io: IO) -> int:
        result = 0
        while True:
            self.check_cancel()
            self.run_list(cmd.cond, io)
            if (self.status == 0) == cmd.until:
                break
            result, going = self._body(cmd.body, io)
            if not going:
                break
        self.status = result
        return result

    def _run_for(self, cmd: For, io: IO) -> int:
        result = 0
        for item in [s for w in cmd.items for s in self.expand(w)]:
            self.check_cancel()
            self.vars[cmd.var] = item
            result, going = self._body(cmd.body, io)
            if not going:
                break
        self.status = result
        return result

    # ---------------------------------------------------------------- expansion
    def var(self, name: str) -> str:
        value = self.vars.get(name)
        if value is not None:  # special names can never be assigned, so they are never in vars
            return value
        special = _SPECIAL_VARS.get(name)
        return special(self) if special is not None else ""

    def expansion(self, seg: Seg) -> str:
        """The value of one expansion segment: a variable, ``$(…)`` or ``$((…))``."""
        if seg.kind in (CMD, QCMD):
            return self.command_substitution(seg.text)
        if seg.kind in (ARITH, QARITH):
            expr = _DOLLAR_VAR_RE.sub(lambda m: self.var(m.group(1)), seg.text)
            if "$" in expr or "`" in expr:
                raise Unsupported("$(...) inside $((...))")
            return str(arith.evaluate(expr, self.vars))
        return self.var(seg.text)

    def command_substitution(self, source: str) -> str:
        out = bytearray()
        sub = self.subshell()
        status = sub.run(source, IO(out.extend, self._err, const_input(b"")))
        self._subst_status = status
        return out.decode("utf-8", "replace").rstrip("\n")

    def expand(self, word: Word) -> list[str]:
        return expand_mod.expand(self, word)

    def expand_one(self, word: Word) -> str:
        static = word.static_fields
        return " ".join(static if static is not None else self.expand(word))

    def path(self, p: str) -> str:
        return normalize(p, self.cwd)

    # ---------------------------------------------------------------- simple commands
    def _run_simple(self, cmd: Simple, io: IO) -> int:
        self._err = io.err
        static = cmd.static_argv
        if static is not None and not self.exec_simple and static[0] != "exec":
            fn = COMMANDS.get(static[0])
            if fn is not None:  # a builtin with constant words: no expansion, no lookup by path
                if cmd.opens_files:
                    with ExitStack() as files:
                        return self._run_builtin(fn, static, cmd.redirs, io, files)
                return self._run_builtin(fn, static, cmd.redirs, io, None)
        self._subst_status = None
        argv: list[str] = []
        for w in cmd.words:
            static = w.static_fields
            argv.extend(static if static is not None else self.expand(w))
        env = {name: self.expand_one(w) for name, w in cmd.assigns}
        if not argv:
            self.vars.update(env)
            self.status = self._subst_status or 0
        if not cmd.redirs:
            if not argv:
                return self.status
            self.status = self.exec_argv(argv, io, env, exec_=self.exec_simple)
            return self.status
        if argv == ["exec"]:
            return self._exec_redirs(cmd.redirs, io)
        with ExitStack() as files:
            try:
                io2 = self._apply_redirs(cmd.redirs, io, files)
            except _RedirectFailed:
                self.status = 1
                return 1
            if not argv:
                return self.status
            self.status = self.exec_argv(argv, io2, env, exec_=self.exec_simple)
            return self.status

    def _apply_redirs(self, redirs: list[Redir], io: IO, files: ExitStack | None) -> IO:
        """The command's outputs and input after its redirections, applied left to right; files
        opened here are closed by ``files`` when the command ends (one open per redirection, as
        in a real shell). A redirection that fails is reported on the standard error as set up
        by the ones before it (``2>/dev/null < missing`` says nothing), and the command is not run."""
        fds: dict[int, Writer] = {1: io.out, 2: io.err}
        new_stdin: Input | None = None
        for r in redirs:
            target = self.expand_one(r.target)
            try:
                if r.op == ">&":
                    fds[r.fd] = self._dup_target(target, fds)
                elif r.op in (">", ">>"):
                    fds[r.fd] = self._file_writer(self.path(target), truncate=r.op == ">", files=files)
                else:
                    if r.fd != 0:
                        raise Unsupported(f"{r.fd}{r.op}")
                    new_stdin = self._input_from(self.path(target), r.op == "<>", files)
            except FsError as exc:
                fds[2](_open_failed(r.op, exc))
                raise _RedirectFailed() from None
        if new_stdin is not None:
            return IO.reading(fds[1], fds[2], new_stdin)
        return io.with_output(fds[1], fds[2])

    def _exec_redirs(self, redirs: list[Redir], io: IO) -> int:
        """``exec N<> file`` / ``exec N< file`` (N ≥ 3): the shell keeps the descriptor open for
        ``read -uN`` until it ends. Changing the shell's own 0, 1 or 2 is refused."""
        for r in redirs:
            if r.op not in ("<", "<>") or r.fd < 3:
                raise Unsupported(f"exec {r.fd}{r.op} (redirecting the shell's own streams)")
        for r in redirs:
            path = self.path(self.expand_one(r.target))
            try:
                inp = self._input_from(path, r.op == "<>", self._fd_files)
            except FsError as exc:
                io.err(f"{SH}: can't open {exc.path}: {os.strerror(exc.errno_)}\n".encode())
                raise ExitShell(1) from None  # a special builtin's redirection error ends the script
            old = self.fds.get(r.fd)
            if old is not None:
                old.close()  # the descriptor is reused, as dup2 closes what it held
            self.fds[r.fd] = inp
        self.status = 0
        return 0

    def _input_from(self, path: str, read_write: bool, files: ExitStack | None) -> Input:
        """``< path`` (the file's bytes) or ``<> path`` (read-write: a FIFO stays open and is read
        as data arrives; a missing file is created, as open(O_RDWR|O_CREAT) does)."""
        fs = self.rt.fs
        if not read_write:
            try:
                return Input.of(fs.read_bytes(path, self.uid))
            except FifoReadError:
                raise Unsupported(_FIFO_AS_FILE) from None
        fd = fs.open_fifo(path, self.uid)
        if fd is not None:
            assert files is not None, "Simple.opens_files said <> opens nothing"
            proc = self.own_proc()
            try:
                fifo = FifoInput(fd, self._signal_for_read, (proc.add_waker, proc.remove_waker))
            except BaseException:
                os.close(fd)
                raise
            files.callback(fifo.close)
            return fifo
        if fs.vnode(path) is not None or fs.is_vdir(path):
            raise Unsupported(f"<> on {path}")
        if not fs.exists(path):
            fs.open_file(path, self.uid, append=True).close()
        return Input.of(fs.read_bytes(path, self.uid))

    def _signal_for_read(self) -> int | None:
        """A signal that ends a waiting ``read`` (trapped, or fatal; ignored ones do not)."""
        if self.cancel.is_set():
            raise Cancelled()
        proc = self.proc
        if proc is None:
            return None
        for signo in list(proc.pending):
            action = self.traps.get(signo)
            if signo == signal.SIGKILL or action or (action is None and signo not in DEFAULT_IGNORED):
                return signo
        return None

    @staticmethod
    def _dup_target(target: str, fds: dict[int, Writer]) -> Writer:
        if target == "-":
            return discard
        if target.isdigit() and int(target) in fds:
            return fds[int(target)]
        raise Unsupported(f">&{target}")

    def _file_writer(self, path: str, truncate: bool, files: ExitStack | None) -> Writer:
        if path == "/dev/null":
            return discard
        node = self.rt.fs.vnode(path)
        if node is not None:
            if node.write is None or self.uid != ROOT_UID:
                raise FsError(errno_mod.EACCES, path)
            return self._node_writer(path, node.write)
        assert files is not None, "Simple.opens_files said this redirection opens nothing"
        fh = files.enter_context(self.rt.fs.open_file(path, self.uid, append=not truncate))

        def write(data: bytes) -> None:
            if data:
                try:
                    fh.write(data)
                except OSError as exc:
                    raise WriteError(path, exc.errno or errno_mod.EIO) from None

        return write

    @staticmethod
    def _node_writer(path: str, node_write: Callable[[bytes], None]) -> Writer:
        """A generated node (sysfs knob, tracefs file) takes each write as a whole, as the kernel's
        store handlers do."""
        def write(data: bytes) -> None:
            if not data:
                return
            try:
                node_write(data)
            except ValueError:
                raise WriteError(path, errno_mod.EINVAL) from None
            except FsError as exc:
                raise WriteError(path, exc.errno_) from None

        return write

    def _run_builtin(self, fn: Cmd, argv: tuple[str, ...], redirs: list[Redir], io: IO,
                     files: ExitStack | None) -> int:
        """What exec_argv does for a builtin, for a command whose words need no expansion;
        ``files`` closes what its redirections open (None: they open nothing to close)."""
        self.cmd_env = {}
        self._exec_next = False
        if redirs:
            try:
                io = self._apply_redirs(redirs, io, files)
            except _RedirectFailed:
                self.status = 1
                return 1
        try:
            self.status = fn(self, list(argv[1:]), io)
        except WriteError as exc:
            io.err(f"{argv[0]}: write error: {os.strerror(exc.errno_)}\n".encode())
            self.status = 1
        return self.status

    def exec_argv(self, argv: list[str], io: IO, env: dict[str, str] | None = None, *, exec_: bool = False) -> int:
        """Run one command; with ``exec_`` it replaces this shell's process (same PID, its name)."""
        name = argv[0]
        if exec_:
            self.own_proc().name = posixpath.basename(name)
            self.rt.procs.changed()
        self._exec_next = exec_
        try:
            if "/" in name:
                return self._exec_file(argv, io, env or {}, exec_)
            fn = COMMANDS.get(name)
            if fn is None:
                if name in REFUSED:
                    raise Unsupported(name)
                io.err(f"{SH}: {name}: inaccessible or not found\n".encode())
                return 127
            self.cmd_env = env or {}
            return fn(self, argv[1:], io)
        except WriteError as exc:
            io.err(f"{name}: write error: {os.strerror(exc.errno_)}\n".encode())
            return 1
        finally:
            self._exec_next = False

    def _exec_file(self, argv: list[str], io: IO, env: dict[str, str], exec_: bool) -> int:
        from perflab.emulator.shell.benchmark import run_benchmark_model

        path = self.path(argv[0])
        st = self.rt.fs.stat(path)
        if st is None:
            io.err(f"{SH}: {argv[0]}: inaccessible or not found\n".encode())
            return 127
        if statmod.S_ISDIR(st.mode) or not (st.mode & 0o111) or self.rt.fs.vnode(path) is not None:
            io.err(f"{SH}: {argv[0]}: can't execute: Permission denied\n".encode())
            return 126
        if posixpath.basename(path).startswith("benchmark_model"):
            return run_benchmark_model(self, path, argv[1:], io, env, in_place=exec_)
        data = self.rt.fs.read_bytes(path, self.uid)
        if data.startswith(b"\x7fELF"):
            raise Unsupported(f"native binary {argv[0]}")
        return self.child().run(data.decode("utf-8", "replace"), io)


_SPECIAL_VARS: dict[str, Callable[[Shell], str]] = {
    "?": lambda sh: str(sh.status), "$": lambda sh: str(sh.pid), "#": lambda sh: "0", "0": lambda sh: "sh",
    "!": lambda sh: str(sh.last_bg_pid) if sh.last_bg_pid else "",
}
