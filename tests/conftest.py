from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def perflab_cmd() -> list[str]:
    """The installed console script's equivalent, run with this interpreter."""
    return [sys.executable, "-m", "perflab"]
