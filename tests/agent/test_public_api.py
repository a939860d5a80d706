import importlib

import pytest


@pytest.mark.parametrize("package", ["agent", "memory", "prompts", "eval"])
def test_every_public_name_exists(package):
    mod = importlib.import_module(package)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing
