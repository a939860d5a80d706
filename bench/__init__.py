"""Tide's benchmarks: speed and memory, printed as ratios measured side by side in one run.

Run from the repository root (nothing here is installed)::

    .venv/bin/python -m bench.engine   # the embedded LLM engine: start modes, dtype, batching, validity ...
    .venv/bin/python -m bench.agent    # the agent on the embedded engine against raw vLLM
    .venv/bin/python -m bench.memory   # the memory store: ingest ratio, retrieval latency, RSS
    .venv/bin/python -m bench.eval     # the evaluation main job, stage by stage

Shared pieces live in ``bench._harness`` (timing, CPU-seconds of a process tree, load average, paired
ratios, the result table) and ``bench._worker`` (one engine in its own subprocess). Timings are printed,
never asserted: tests do not time anything.

Module tops import only the standard library: vLLM's spawned engine processes re-import the worker's
module as ``__mp_main__``.
"""
