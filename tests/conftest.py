"""Test-wide settings: no model hub, a small vLLM KV cache, deterministic hashing of nothing global."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# the default 4 GiB KV cache puts a vLLM CPU process near 9 GB peak; tests need far less
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
