"""What every HTML page perflab writes shares: one Jinja environment with the one formatter's
filters (perflab.core.display), and writing a page with its companion files.

Filters every template may use: ``num`` (``{{ x|num(".4g", "ms") }}``), ``ms``, ``fine_ms``,
``size``, ``pct``, ``signed`` and ``missing``; a missing value comes out as "—".
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab.core.display import fmt_fine_ms, fmt_missing, fmt_ms, fmt_num, fmt_pct, fmt_signed, fmt_size
from perflab.errors import PerflabError, StoreError

if TYPE_CHECKING:
    import jinja2

FILTERS: dict[str, Callable[..., Any]] = {
    "num": fmt_num, "ms": fmt_ms, "fine_ms": fmt_fine_ms, "size": fmt_size, "pct": fmt_pct, "signed": fmt_signed,
    "missing": fmt_missing,
}


def environment(filters: Mapping[str, Callable[..., Any]] | None = None) -> jinja2.Environment:
    """The templates' environment: every template autoescaped whatever its file name (model and
    device names come from users), undefined names an error, the formatter's filters plus
    ``filters``."""
    import jinja2  # only when a page is drawn: the CLI starts without it

    env = jinja2.Environment(loader=jinja2.PackageLoader("perflab.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.filters.update(filters or {})
    return env


def render(template: str, filters: Mapping[str, Callable[..., Any]] | None = None, **context: Any) -> str:
    return environment(filters).get_template(template).render(**context)


def atomic_write_text(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole or keeps what it had: written beside it, then renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(out_dir: Path, files: Mapping[str, str], *, what: str,
                error: Callable[[str], PerflabError] = StoreError) -> dict[str, Path]:
    """Each ``name: text`` of ``files`` written into ``out_dir`` (made if missing); an OS error
    becomes ``error("<out_dir>: cannot write <what>: <why>")``."""
    written: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            written[name] = out_dir / name
            atomic_write_text(written[name], text)
    except OSError as exc:
        raise error(f"{out_dir}: cannot write {what}: {exc.strerror or exc}") from None
    return written


def device_link(matrix_page: str, serial: str) -> str:
    """The address of a device's row on a matrix page (for run reports linking their devices):
    ``<matrix_page>#device=<serial>``; the page highlights the row and scrolls to it."""
    return f"{matrix_page}#device={urllib.parse.quote(serial, safe='')}"
