"""The trunk cache of item-head training (see ``agent._itemhead_tune``): the frozen lower layers' output of each
training window that comes again, kept so that later epochs run only the tuned layers."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._itemhead_backbone import _Backbone

log = logging.getLogger(__name__)


class _TrunkCache:
    """The trunk's output (the decoder layers below the adapter, which have no trainable weight) for each
    training window that comes again — every epoch after the first repeats the windows — kept in CPU memory up
    to a byte budget and read instead of recomputed: only the tuned layers then run forward. The layers above
    compute the same from it; that is checked bit for bit on the first window kept, and on any difference the
    cache turns itself off (a warning), so a run with it is the run without it. A window is dropped after its
    last use."""

    def __init__(self, bb: _Backbone, windows: Sequence[tuple], budget_bytes: int):
        self.bb, self.budget = bb, budget_bytes
        self.on = budget_bytes > 0 and bb.first_tuned > 0
        self.left = Counter(self._key(w) for w in windows) if self.on else Counter()
        self.kept: dict[tuple, tuple[Any, list[int], int]] = {}
        self.bytes = self.peak = self.hits = 0
        self.checked = False

    @staticmethod
    def _key(window: tuple) -> tuple:
        _, seq, *rated = window
        return tuple(seq[:-1]), (tuple(rated[0][:-1]) if rated else None)

    def states(self, window: tuple) -> Any:
        """The backbone's states after each line of ``window``'s history (all but its last item)."""
        import torch

        _, seq, *rated = window
        seq, rates = seq[:-1], (rated[0][:-1] if rated else None)
        if not self.on:
            return self.bb.states(seq, rates)
        key = self._key(window)
        self.left[key] -= 1
        if key in self.kept:
            trunk, ends, size = self.kept[key]
            if self.left[key] <= 0:
                del self.kept[key]
                self.bytes -= size
            self.hits += 1
            return self.from_trunk(trunk, ends, seq)
        if self.left[key] <= 0:  # not read again
            return self.bb.states(seq, rates)
        h, trunk, ends = self._with_trunk(seq, rates)
        size = trunk.numel() * trunk.element_size()
        if self.bytes + size > self.budget:
            return h
        if not self.checked:
            self.checked = True
            with torch.no_grad():
                again = self.from_trunk(trunk, ends, seq)
            if not torch.equal(again, h.detach()):
                log.warning("the trunk cache is off: the tuned layers read from the cached trunk differ from the "
                            "whole forward pass (max |diff| %.3g)", float((again - h.detach()).abs().max()))
                self.on = False
                return h
        self.kept[key] = (trunk, ends, size)
        self.bytes += size
        self.peak = max(self.peak, self.bytes)
        return h

    def _with_trunk(self, seq: Sequence[int], rates: Sequence[int] | None) -> tuple[Any, Any, list[int]]:
        """The backbone's states, plus the trunk's output (the input of layer ``first_tuned``, ``(tokens,
        hidden)``, a CPU copy) and the rows of the item lines' ends."""
        dec = self.bb.decoder()
        seen: list[Any] = []

        def grab(_module: Any, args: tuple, kwargs: dict) -> None:
            seen.append((args[0] if args else kwargs["hidden_states"])[0].detach().to("cpu", copy=True))

        # first among the layer's hooks: the trunk's own output, before any item IDs are added to it
        hook = dec.layers[self.bb.first_tuned].register_forward_pre_hook(grab, with_kwargs=True, prepend=True)
        try:
            h = self.bb.states(seq, rates)
        finally:
            hook.remove()
        return h, seen[0], self.bb.tokens(seq, rates)[1]

    def from_trunk(self, trunk: Any, ends: Sequence[int], seq: Sequence[int]) -> Any:
        """The backbone's states from the trunk's output: the decoder with its trunk layers passed through, so
        only the layers from ``first_tuned`` up run (the same computation on the same input, item IDs
        included)."""
        import torch

        class Through(torch.nn.Module):  # a trunk layer whose output is already known
            def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
                return hidden_states

        bb = self.bb
        dec = bb.decoder()
        layers = dec.layers
        dec.layers = torch.nn.ModuleList([Through()] * bb.first_tuned + list(layers[bb.first_tuned:]))
        try:
            h = bb.run(seq, list(ends), inputs_embeds=trunk.unsqueeze(0).to(bb.device))
        finally:
            dec.layers = layers
        return h[list(ends)]

    def facts(self) -> dict[str, Any] | None:
        return {"hits": self.hits, "peak_gib": round(self.peak / 2**30, 3)} if self.on else None
