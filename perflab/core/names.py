"""Name rules shared by every layer: what text may reach a device's command line, and the
file-name rule for saved frames.

One home for the rule the phone's command builder applies
(:mod:`perflab.workloads.benchmark_model`), so ``perflab scenario check`` refuses a model
file name with the very same words the phone run would, before anything runs.

Pure functions; imports nothing from perflab but errors.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from perflab.errors import UserInputError

MAX_ARG_LEN = 4096
"""Longest single argument perflab sends in a device command."""
MAX_FILE_NAME_BYTES = 255
"""Longest file name (UTF-8 bytes) on Android's file systems (NAME_MAX)."""
GRAPH_FORBIDDEN = ","
"""Characters benchmark_model's ``--graph=`` cannot carry (its flag parser splits on them)."""
VALUE_FILE_FORBIDDEN = ",:"
"""Characters an ``--input_layer_value_files=name:path,…`` entry cannot carry."""


def command_text_problem(value: str, *, forbid: str = "") -> str | None:
    """Why ``value`` cannot be one argument of a device command, or None if it can.

    Refused: the empty string, more than :data:`MAX_ARG_LEN` characters, control characters
    (newline, tab, NUL, DEL …) and any character of ``forbid`` (the separators a flag gives
    meaning to). Everything else is safe once quoted.
    """
    if not value:
        return "is empty"
    if len(value) > MAX_ARG_LEN:
        return f"is longer than {MAX_ARG_LEN} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return f"contains a control character: {value!r}"
    bad = sorted({c for c in value if c in forbid})
    if bad:
        return f"may not contain {' '.join(repr(c) for c in bad)}: {value!r}"
    return None


def check_command_text(value: str, what: str, *, forbid: str = "") -> str:
    """``value`` if it may be one argument of a device command; else UserInputError naming ``what``."""
    problem = command_text_problem(value, forbid=forbid)
    if problem is not None:
        raise UserInputError(f"{what} {problem}")
    return value


def check_device_path(value: str, what: str, *, forbid: str = "") -> str:
    """An absolute path on the device that passes :func:`check_command_text`."""
    check_command_text(value, what, forbid=forbid)
    if not value.startswith("/"):
        raise UserInputError(f"{what} must be an absolute path on the device: {value!r}")
    return value


def model_file_name_problem(file_name: str) -> str | None:
    """Why a model file of this name cannot be pushed to a phone and given to ``--graph=``, or
    None. The phone path is ``<workdir>/m/<hash>/<file_name>``, so the file name itself must
    pass the ``--graph`` rule and fit a file name on the phone."""
    problem = command_text_problem(file_name, forbid=GRAPH_FORBIDDEN)
    if problem is not None:
        return problem
    if file_name in (".", "..") or "/" in file_name:
        return f"is not a file name: {file_name!r}"
    if len(file_name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES:
        return f"is longer than {MAX_FILE_NAME_BYTES} bytes"
    return None


def one_line(text: str, limit: int = 200) -> str:
    """``text`` as one printable line (control characters escaped), at most ``limit`` characters:
    what a one-line user error may quote back of a user's value."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# a device serial as a host file name


def serial_filename(serial: str) -> str:
    """A host-side file name for a device serial (``127.0.0.1:40001`` → ``127.0.0.1_40001-<hash>``):
    the name of its lock, journal and nightly state files. The hash keeps two serials that only
    differ in replaced characters apart. (Inside a run folder a cell's files are named by
    :func:`perflab.store.results.artifact_dir`, a readable rule that results.json readers rely on.)"""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)[:64]
    digest = hashlib.sha256(serial.encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


# ---------------------------------------------------------------------------------------------
# saved frame names

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FRAME_NAME_LEN = 80


def frame_stem(text: str) -> str:
    """A file-system-safe stem: letters, digits, ``.``, ``_``, ``-`` only (others → ``_``), no
    leading dot, at most :data:`MAX_FRAME_NAME_LEN` characters, never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("_", ascii_text).strip("._-")[:MAX_FRAME_NAME_LEN].rstrip("._-")
    return stem or "frame"


class FrameNamer:
    """Unique, file-system-safe frame names, deterministic in the order names are asked for.

    Rule: the first frame asking for stem ``s`` gets ``s``; the n-th later one gets ``s-n``
    (n = 2, 3, …), skipping any name already given. Names are compared case-insensitively
    so two frames never share a file on a case-insensitive file system either.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def name(self, wanted: str) -> str:
        stem = frame_stem(wanted)
        candidate, n = stem, 1
        while candidate.lower() in self._taken:
            n += 1
            candidate = f"{stem}-{n}"
        self._taken.add(candidate.lower())
        return candidate
