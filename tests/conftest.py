from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A developer's own ~/.config/perflab must not change what the tests load: every test (and every
# perflab it starts) sees an empty user config folder unless the test sets one itself.
os.environ["PERFLAB_CONFIG_DIR"] = tempfile.mkdtemp(prefix="perflab-test-config-")


@pytest.fixture
def perflab_cmd() -> list[str]:
    """The installed console script's equivalent, run with this interpreter."""
    return [sys.executable, "-m", "perflab"]
