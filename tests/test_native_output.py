"""Native libraries' lines on descriptor 2 are caught while perflab uses them in process
(perflab.core.native_output), and perflab's own stderr still reaches the user.

Each check runs in a child process, whose descriptor 2 is a real pipe the test reads (pytest
captures its own descriptors)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _child(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600, check=False, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_native_writes_are_caught_and_pythons_stderr_still_gets_through(tmp_path: Path) -> None:
    r = _child("""
        import os, sys
        from perflab.core.native_output import native_stderr_captured
        print("before", file=sys.stderr, flush=True)
        with native_stderr_captured() as out:
            os.write(2, b"native noise\\n")
            print("progress from perflab", file=sys.stderr)
            with native_stderr_captured() as inner:  # blocks nest
                os.write(2, b"inner noise\\n")
            os.write(2, b"more native noise\\n")
        print("after", file=sys.stderr, flush=True)
        os.write(2, b"native after the block\\n")
        print(repr(out.text)); print(repr(inner.text)); print(repr(out.last_line()))
        """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["before", "progress from perflab", "after", "native after the block"]
    assert r.stdout.splitlines() == ["'native noise\\nmore native noise\\n'", "'inner noise\\n'", "'more native noise'"]


def test_descriptor_2_is_restored_when_the_block_raises(tmp_path: Path) -> None:
    r = _child("""
        import os, sys
        from perflab.core.native_output import native_stderr_captured
        try:
            with native_stderr_captured() as out:
                os.write(2, b"said before failing\\n")
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        os.write(2, b"still mine\\n")
        print("perflab's error", file=sys.stderr)
        print(out.last_line())
        """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["still mine", "perflab's error"]
    assert r.stdout.strip() == "said before failing"


def test_tensorflow_start_up_is_silent_inside_the_block(tmp_path: Path) -> None:
    """TensorFlow 2.21 writes absl's pre-initialisation warning and a oneDNN notice to
    descriptor 2 on import, whatever TF_CPP_MIN_LOG_LEVEL says: the block catches them."""
    pytest.importorskip("tensorflow")
    code = """
        import sys
        from perflab.core.native_output import native_stderr_captured
        with native_stderr_captured() as out:
            import tensorflow
        print("captured:", len(out.text.splitlines()))
        """
    r = _child(code, tmp_path, TF_CPP_MIN_LOG_LEVEL="2")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    bare = _child("import tensorflow", tmp_path, TF_CPP_MIN_LOG_LEVEL="2")
    # what the block saved the user from (if a later TensorFlow stops printing it, the block is moot)
    assert r.stdout.strip() == f"captured: {len(bare.stderr.splitlines())}"


def test_a_planner_segment_made_on_a_cold_cache_prints_nothing(tmp_path: Path) -> None:
    """The split planner's first segment on a fresh machine: TensorFlow starts, the shipped model
    is rebuilt and checked on LiteRT (its XNNPACK line), and the int8 converter runs (its
    quantizer's line). None of it reached `perflab plan`'s stderr before; nothing may now."""
    pytest.importorskip("tensorflow")
    r = _child("""
        from perflab.zoo.registry import get_artifact
        from perflab.zoo.segments import SegmentKey, SegmentMaker
        maker = SegmentMaker(get_artifact("espcn", 2, "fp32"), calibration_patches=2)
        print(maker.path(SegmentKey(0, 1, "int8")).stat().st_size > 0)
        """, tmp_path, PERFLAB_CACHE_DIR=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True" and r.stderr == "", r.stderr
