"""``python -m perflab.emulator.benchmark_model``: the emulated tool's process."""

from __future__ import annotations

import sys

from perflab.emulator.benchmark_model.run import main

try:
    sys.exit(main())
except KeyboardInterrupt:
    sys.exit(130)
