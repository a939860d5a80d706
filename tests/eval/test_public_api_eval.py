from __future__ import annotations

import importlib


def test_every_name_in_all_is_importable() -> None:
    module = importlib.import_module("eval")
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name
    errors = importlib.import_module("eval._errors")
    for name in errors.__all__:
        assert hasattr(errors, name), name


def test_import_is_light() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, eval; print(any(m in sys.modules for m in ('torch', 'matplotlib', 'scipy', 'ranx')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert out.stdout.strip() == "False"
