"""The item head's backbone: the base LLM with LoRA on its top layers, reading a history written as text (a fixed
header, then one ``Title (year)`` line per item) and giving the final hidden state after each line; item ID vectors
can be added at the tuned layers' input (``ItemHeadConfig.item_ids``). Training (``agent._itemhead_tune``) and
scoring (``agent._itemhead.ItemHeadScorer``) both read through it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._tune import ALL_LINEAR

#: the header every history is written under (training and inference)
HEADER = "Films one person watched, oldest first:\n"
#: a history line with the rating (``ItemHeadConfig.ratings``): the title, then the rating on a 1-5 scale as a
#: star and a digit (two tokens more on Gemma's tokenizer; " 4/5" is four)
RATED_LINE = "{title} ★{rating}\n"


class _Backbone:
    """The base LLM with LoRA on the top layers; encodes histories as text (HEADER + one title per line)."""

    def __init__(self, base: Path, titles: Sequence[str], rank: int, top_layers: int, *, lora: bool = True,
                 device: str = "cpu", rated: bool = False, dropout: float = 0.0):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(base))
        lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        n = int(lm.config.num_hidden_layers)
        self.hidden = int(lm.config.hidden_size)
        self.model = get_peft_model(lm, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(ALL_LINEAR),
                                                   layers_to_transform=list(range(max(0, n - top_layers), n)),
                                                   lora_dropout=dropout, bias="none")) if lora else lm
        #: the lowest decoder layer with an adapter: the layers below it have no trainable weight (the trunk)
        self.first_tuned = max(0, n - top_layers) if lora else n
        self.device = torch.device(device)
        self.model.to(self.device)
        # Gemma's tokenizer has a BOS token; Qwen2's has none, and its config names <|endoftext|> instead
        bos = self.tok.bos_token_id if self.tok.bos_token_id is not None else lm.config.bos_token_id
        self.prefix = ([bos] if bos is not None else []) + self.tok.encode(HEADER, add_special_tokens=False)
        self.lines = [self.tok.encode(t + "\n", add_special_tokens=False) for t in titles]
        # rated[r - 1][j]: item j's line with rating r (ItemHeadConfig.ratings)
        self.rated = [[self.tok.encode(RATED_LINE.format(title=t, rating=r), add_special_tokens=False)
                       for t in titles] for r in range(1, 6)] if rated else None
        self._ids: tuple[Any, float] | None = None  # (ID vectors, scale) once inject_ids is called
        self._reading: tuple[list[int], Sequence[int]] | None = None  # (line ends, item indices) of a read

    def inject_ids(self, table: Any, layer: int, scale: float) -> None:
        """From now on every read adds ``scale * table[item]`` to the input of decoder layer ``layer`` at the end
        of each item's line (``ItemHeadConfig.item_ids``); ``table`` may be a trainable parameter."""
        torch = self.torch
        if self._ids is not None:
            raise ValueError("item IDs are injected already")
        self._ids = (table, float(scale))

        def add(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            if self._reading is None:
                return None
            ends, seq = self._reading
            h = args[0] if args else kwargs["hidden_states"]
            vec = (scale * table[torch.as_tensor(list(seq), device=table.device)]).to(device=h.device, dtype=h.dtype)
            h = h.index_add(1, torch.as_tensor(ends, device=h.device), vec.unsqueeze(0))
            if args:
                return (h, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": h}

        self.decoder().layers[layer].register_forward_pre_hook(add, with_kwargs=True)

    def run(self, seq: Sequence[int], ends: list[int], **inputs: Any) -> Any:
        """The decoder's last hidden state for one read whose item lines end at ``ends`` (item IDs injected
        there, when the backbone has them)."""
        self._reading = (ends, seq) if self._ids is not None else None
        try:
            return self.decoder()(**inputs).last_hidden_state[0]
        finally:
            self._reading = None

    def decoder(self) -> Any:
        m = self.model
        return m.base_model.model.model if hasattr(m, "base_model") and hasattr(m, "peft_config") else m.model

    def states(self, seq: Sequence[int], rates: Sequence[int] | None = None, *, plain: bool = False) -> Any:
        """Final hidden state after each item's line, ``(len(seq), hidden)``; with ``rates`` (levels 1-5, one
        per item) the lines carry the ratings. ``plain``: titles alone, even on a rated backbone (the head's
        starting vectors)."""
        if not plain and (rates is None) != (self.rated is None):
            raise ValueError("a rated item head reads every history with its ratings, an unrated one without")
        if rates is not None and len(rates) != len(seq):
            raise ValueError(f"{len(rates)} ratings for {len(seq)} items")
        ids, ends = self.tokens(seq, rates)
        h = self.run(seq, ends, input_ids=self.torch.tensor([ids], device=self.device))
        return h[ends]

    def tokens(self, seq: Sequence[int], rates: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
        """The history's token ids (header, then one line per item) and the position of each line's end."""
        ids, ends = list(self.prefix), []
        for k, j in enumerate(seq):
            ids += self.lines[j] if rates is None else self.rated[rates[k] - 1][j]
            ends.append(len(ids) - 1)
        return ids, ends

    def init_head(self, progress: bool = False) -> Any:
        """Each item's state after its title read alone (the base model, no adapter)."""
        from tqdm.auto import tqdm

        out = self.torch.zeros(len(self.lines), self.hidden)
        ctx = self.model.disable_adapter() if hasattr(self.model, "disable_adapter") else _Null()
        with self.torch.no_grad(), ctx:
            for j in tqdm(range(len(self.lines)), desc="item head init", disable=not progress):
                out[j] = self.states([j], plain=True)[-1].cpu()
        return out


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None
