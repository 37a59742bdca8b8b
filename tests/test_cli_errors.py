"""The CLI's one map from exception types to exit codes, and its one error line."""

from __future__ import annotations

import pytest
import typer

from perflab.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERNAL, EXIT_SIGINT, exit_code, fail
from perflab.errors import DeviceGoneError, MeasurementError, SourceLocation, UserInputError


@pytest.mark.parametrize(("exc", "code"), [
    (UserInputError("bad", SourceLocation("s.yaml", 3, "runs")), EXIT_BAD_INPUT),
    (MeasurementError("no timing"), EXIT_FAILED),
    (DeviceGoneError("emulator-1", "gone"), EXIT_FAILED),
    (KeyboardInterrupt(), EXIT_SIGINT),
    (ValueError("a bug"), EXIT_INTERNAL),
])
def test_exit_code_by_exception_type(exc: BaseException, code: int) -> None:
    assert exit_code(exc) == code


def test_fail_prints_one_line_and_exits_by_type_unless_the_stage_decides(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as by_type:
        fail(MeasurementError("no timing"))
    assert by_type.value.exit_code == EXIT_FAILED
    with pytest.raises(typer.Exit) as by_stage:
        fail(MeasurementError("no timing"), EXIT_BAD_INPUT)
    assert by_stage.value.exit_code == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "perflab: error: no timing\n" * 2
    with pytest.raises(TypeError):
        fail("a message alone has no type to map")
