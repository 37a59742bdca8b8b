"""Delegate names as TFLite writes them in its log lines (``Explicitly applied GPU delegate,
…``, ``Could not create NNAPI delegate: …``), by perflab's delegate name. Read by the
workload's checks of a parsed run, written by the emulated tool. A module of its own so the
emulated tool's process imports this table, not the parser's regular expressions."""

from __future__ import annotations

DELEGATE_LOG_NAMES = {"gpu": "GPU", "nnapi": "NNAPI", "hexagon": "Hexagon", "xnnpack": "XNNPACK"}
