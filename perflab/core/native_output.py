"""What native libraries print on the process's stderr while perflab uses them in process.

TensorFlow's start-up writes absl's "All log messages before absl::InitializeLog() …" and a
oneDNN notice straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says (TF 2.21);
the TFLite converter's quantizer prints ``fully_quantize: 0, …``; LiteRT announces its XNNPACK
delegate. None of it is perflab's output, and on a fresh machine (nothing cached yet) it landed
in the middle of a command's progress, as the first line of ``perflab plan``. Python's
``contextlib.redirect_stderr`` cannot catch it: the libraries write to the descriptor.

:func:`native_stderr_captured` points descriptor 2 at a temporary file for a block of such work
and gives back what was written there; Python's own ``sys.stderr`` keeps writing to where
descriptor 2 went before, so perflab's progress and errors still reach the user. The captured
text is for an error message when the work fails, never printed on success."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO


@dataclass
class NativeOutput:
    """What the native code wrote on descriptor 2 inside the block (set when the block ends)."""

    text: str = ""

    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def said_by(self, who: str) -> str:
        """`` (<who>'s last line: …)`` for an error message, or "" when nothing was written."""
        last = self.last_line()
        return f" ({who}'s last line: {last})" if last else ""


def _stderr_fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[NativeOutput]:
    """Descriptor 2 into a temporary file for the block (see the module's doc); restored when
    the block ends, also on an exception or Ctrl-C. Where descriptor 2 cannot be duplicated the
    block runs as it is and nothing is captured. Blocks nest."""
    out = NativeOutput()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield out
        return
    python_stderr = sys.stderr
    mirror: TextIO | None = None
    with tempfile.TemporaryFile() as sink:
        try:
            if _stderr_fileno(python_stderr) == 2:
                # Python's writes keep going where descriptor 2 went (a copy of it), line by line
                mirror = open(os.dup(saved), "w", encoding=python_stderr.encoding or "utf-8",  # noqa: SIM115
                              errors="backslashreplace", buffering=1)
                sys.stderr = mirror
            os.dup2(sink.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if mirror is not None:
                sys.stderr = python_stderr
                with contextlib.suppress(OSError, ValueError):
                    mirror.close()
            sink.seek(0)
            out.text = sink.read().decode("utf-8", errors="replace")
