"""perflab's command line: every typer command lives in this package, and typer nowhere else.

One module per command group (``run``, ``scenario``, ``models``, ``devices``, ``trace`` for
``profile`` and ``trace``, ``meter``, ``emulate``, ``rack`` for ``rack``/``nightly``/``worker``,
``matrix``, ``compare`` for ``compare``/``dashboard``/``store``); :mod:`perflab.cli.main` lists
them in one table (``COMMANDS``, with their one-line help), imports each only when its command
runs, and holds ``main`` (the console script ``perflab = "perflab.cli:main"``);
:mod:`perflab.cli.errors` is the one error helper and the one map from exception types to exit
codes. The packages below expose plain functions and know nothing of the command line.
"""

from perflab.cli.main import app, main

__all__ = ["app", "main"]
