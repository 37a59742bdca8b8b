"""Load a scenario file: YAML → validated Scenario, with one-line file:line: field errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from perflab.errors import UserInputError
from perflab.scenario.schema import Scenario
from perflab.scenario.yamlsrc import LocatedDocument, PathKey, load_yaml


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario and where it came from (paths in it resolve against ``base_dir``)."""

    scenario: Scenario
    file: Path
    base_dir: Path
    source_text: str

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


def validate_document(doc: LocatedDocument, model: type[BaseModel]) -> Any:
    """Validate ``doc.data`` against ``model``; the first error becomes a located UserInputError."""
    if not isinstance(doc.data, dict):
        raise UserInputError("top level must be a mapping", doc.location(()))
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: PathKey = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        # pydantic appends union/model tags to loc; keep the prefix that exists in the document
        while loc and doc.lines.get(loc) is None and len(loc) > 1 and not _is_missing(err):
            loc = loc[:-1]
        message = _message(err)
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise UserInputError(message, doc.location(loc)) from None


def _is_missing(err: Any) -> bool:
    return bool(err["type"] == "missing")


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    inp = err.get("input")
    if kind not in ("model_type",) and inp is not None and not isinstance(inp, (dict, list)):
        msg += f" (got {json.dumps(inp) if isinstance(inp, (str, int, float, bool)) else repr(inp)})"
    return msg


def load_scenario(path: Path) -> LoadedScenario:
    doc = load_yaml(path)
    scenario: Scenario = validate_document(doc, Scenario)
    loaded = LoadedScenario(
        scenario=scenario, file=path, base_dir=path.resolve().parent, source_text=path.read_text("utf-8")
    )
    _check_paths(loaded, doc)
    return loaded


def _check_paths(loaded: LoadedScenario, doc: LocatedDocument) -> None:
    """Files named by the scenario must exist now, not halfway through a run."""
    s = loaded.scenario
    for i, m in enumerate(s.models):
        if m.path is not None:
            p = loaded.resolve(m.path)
            if not p.is_file():
                raise UserInputError(f"model file not found: {p}", doc.location(("models", i, "path")))
            if m.scale is None:
                raise UserInputError(
                    "a 'path' model needs 'scale'", doc.location(("models", i, "path"))
                )
    for i, src in enumerate(s.inputs.images):
        if src.path is not None:
            p = loaded.resolve(src.path)
            if not p.exists():
                raise UserInputError(f"image path not found: {p}", doc.location(("inputs", "images", i, "path")))
        if src.skimage is not None:
            from perflab.quality.frames import SKIMAGE_PHOTOS

            if src.skimage not in SKIMAGE_PHOTOS:
                raise UserInputError(
                    f"unknown scikit-image photo {src.skimage!r} (known: {', '.join(sorted(SKIMAGE_PHOTOS))})",
                    doc.location(("inputs", "images", i, "skimage")),
                )
    for i, v in enumerate(s.inputs.video):
        p = loaded.resolve(v.path)
        if not p.is_file():
            raise UserInputError(f"video file not found: {p}", doc.location(("inputs", "video", i, "path")))
    for i, m in enumerate(s.models):
        if m.zoo is not None:
            from perflab.zoo.registry import known_families

            fams = known_families()
            if m.zoo not in fams:
                raise UserInputError(
                    f"unknown zoo model {m.zoo!r} (known: {', '.join(sorted(fams))})",
                    doc.location(("models", i, "zoo")),
                )
