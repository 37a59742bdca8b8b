"""Load a scenario file: YAML → validated Scenario, with one-line file:line: field errors.

This checks what the scenario file alone can tell (syntax, schema, bounds, names, that the
files it names exist, that a model file is a TFLite flatbuffer). Checks that need the model zoo or the input decoders (a zoo family
exists, an image decodes, training images among the inputs) live in
:mod:`perflab.lab.validate`, which the CLI runs after loading.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from perflab.core.tflite_file import check_tflite_file
from perflab.core.yamlsrc import LocatedDocument, PathKey, load_yaml, validate_document
from perflab.errors import SourceLocation, UserInputError
from perflab.scenario.plan import DuplicateCellError, plan_cells
from perflab.scenario.schema import Scenario


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario and where it came from (paths in it resolve against ``base_dir``)."""

    scenario: Scenario
    file: Path
    base_dir: Path
    source_text: str
    document: LocatedDocument | None = None

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        with contextlib.suppress(RuntimeError):  # ~user of an unknown user: kept, then reported missing
            p = p.expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def location(self, path: PathKey) -> SourceLocation:
        """file:line: field of a value of the scenario (line unknown if built without a document)."""
        if self.document is None:
            return SourceLocation(str(self.file), None, ".".join(str(p) for p in path) or None)
        return self.document.location(path)


def load_scenario(path: Path) -> LoadedScenario:
    doc = load_yaml(path)
    scenario: Scenario = validate_document(doc, Scenario)
    loaded = LoadedScenario(
        scenario=scenario, file=path, base_dir=path.resolve().parent, source_text=doc.text, document=doc
    )
    _check_paths(loaded)
    try:
        plan_cells(scenario)
    except DuplicateCellError as exc:
        raise UserInputError(exc.message, loaded.location(("models", exc.model_index))) from None
    return loaded


def _kind(p: Path) -> str:
    """'file', 'folder', 'missing', or why the path cannot be looked at."""
    try:
        if p.is_dir():
            return "folder"
        return "file" if p.is_file() else ("missing" if not p.exists() else "special")
    except (OSError, ValueError) as exc:
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"


def _check_paths(loaded: LoadedScenario) -> None:
    """Files named by the scenario must exist now, not halfway through a run."""
    s = loaded.scenario
    for i, m in enumerate(s.models):
        if m.path is not None:
            p = loaded.resolve(m.path)
            where = loaded.location(("models", i, "path"))
            kind = _kind(p)
            if kind == "missing":
                raise UserInputError(f"model file not found: {p}", where)
            if kind != "file":
                raise UserInputError(f"model path is not a .tflite file ({kind}): {p}", where)
            if m.scale is None:
                raise UserInputError("a 'path' model needs 'scale'", where)
            check_tflite_file(p, location=where)  # a text file, an empty or random file: here, not at run
    _check_input_paths(loaded)


def _check_input_paths(loaded: LoadedScenario) -> None:
    s = loaded.scenario
    for i, src in enumerate(s.inputs.images):
        if src.path is not None:
            p = loaded.resolve(src.path)
            kind = _kind(p)
            if kind == "missing":
                raise UserInputError(f"image path not found: {p}", loaded.location(("inputs", "images", i, "path")))
            if kind not in ("file", "folder"):
                raise UserInputError(
                    f"image path is neither a file nor a folder ({kind}): {p}",
                    loaded.location(("inputs", "images", i, "path")),
                )
    for i, v in enumerate(s.inputs.video):
        if v.path is None:  # a packaged clip: perflab.lab.validate checks it was unpacked
            continue
        p = loaded.resolve(v.path)
        where = loaded.location(("inputs", "video", i, "path"))
        kind = _kind(p)
        if kind == "missing":
            raise UserInputError(f"video file not found: {p}", where)
        if kind != "file":
            raise UserInputError(f"video path is not a video file ({kind}): {p}", where)
    _check_pair_paths(loaded)


def _check_pair_paths(loaded: LoadedScenario) -> None:
    for i, pair in enumerate(loaded.scenario.inputs.pairs):
        for side in ("lr", "hr"):
            p = loaded.resolve(getattr(pair, side))
            where = loaded.location(("inputs", "pairs", i, side))
            kind = _kind(p)
            if kind == "missing":
                raise UserInputError(f"{side.upper()} path not found: {p}", where)
            if kind not in ("file", "folder"):
                raise UserInputError(f"{side.upper()} path is neither a file nor a folder ({kind}): {p}", where)
