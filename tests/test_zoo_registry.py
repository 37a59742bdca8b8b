"""Registry lookups: artefacts, errors, metadata — and no TensorFlow import on the way."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from perflab.errors import ModelError, UserInputError
from perflab.zoo.registry import get_artifact, known_families, list_models, model_info


def test_known_families_include_bicubic_and_an_sr_model() -> None:
    fams = known_families()
    assert "bicubic" in fams and "espcn" in fams


def test_get_artifact_fields() -> None:
    art = get_artifact("espcn", 2, "fp32")
    assert art.name == "espcn_x2" and art.family == "espcn" and art.variant == "fp32" and art.scale == 2
    data = art.path.read_bytes()
    assert art.size_bytes == len(data)
    assert art.sha256 == hashlib.sha256(data).hexdigest()


def test_errors() -> None:
    with pytest.raises(UserInputError):
        get_artifact("nosuchnet", 2, "fp32")
    with pytest.raises(UserInputError):
        get_artifact("espcn", 7, "fp32")
    with pytest.raises(UserInputError):
        get_artifact("espcn", 2, "int4")
    # bicubic x4 ships fp32 but is a fixed graph; every listed model has fp32
    info = model_info("bicubic", 4)
    assert info.variant_sizes()["fp32"]


def test_missing_variant_file_is_model_error(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import perflab.zoo.registry as reg

    info = model_info("espcn", 2)
    monkeypatch.setattr(reg.ModelInfo, "variant_path", lambda self, v, d=reg.WEIGHTS_DIR: d / "absent.tflite")
    with pytest.raises(ModelError):
        get_artifact(info.family, info.scale, "fp32")


def test_metadata_macs_scale_with_lr_size() -> None:
    for info in list_models():
        assert info.params > 0
        assert info.macs_per_frame(960, 540) == info.macs_per_lr_pixel * 960 * 540
        j = info.to_json(960, 540)
        assert j["name"] == f"{info.family}_x{info.scale}" and j["training_data"]
    espcn = model_info("espcn", 2)
    # conv5x5 3→64, conv3x3 64→32, conv3x3 32→12
    assert espcn.macs_per_lr_pixel == 25 * 3 * 64 + 9 * 64 * 32 + 9 * 32 * 12


def test_registry_does_not_import_tensorflow() -> None:
    code = ("import sys; from perflab.zoo import registry; registry.get_artifact('espcn', 2, 'int8'); "
            "registry.list_models(); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
