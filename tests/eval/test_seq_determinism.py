"""Seeded sequence-model training repeats bit for bit with several CPU threads.

Indexing an item table (``table[x]``) has a backward (``index_put_`` with accumulate) that, with two CPU
threads, sums the rows' gradients in an order that changes from call to call; one step's gradient then
differed in the last bits, and SASRec's seeded training did not repeat across runs. The nets look items up
with ``functional.embedding`` instead, whose backward is deterministic. These tests repeat one training
step on a full-size batch (64 windows of 50 items, the ML-100k catalogue) with allocations in between and
require identical gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eval._lstm import LSTMConfig  # noqa: E402
from eval._lstm import _make_net as lstm_net  # noqa: E402
from eval._sasrec import SASRecConfig  # noqa: E402
from eval._sasrec import _make_net as sasrec_net  # noqa: E402

N_ITEMS = 1682


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _gradients(make, junk: int) -> dict[str, torch.Tensor]:
    kept = torch.empty(junk)  # moves where the step's tensors are allocated
    torch.manual_seed(0)
    net = make()
    net.train()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, N_ITEMS + 1, (64, 50), generator=g)
    y = torch.randint(1, N_ITEMS + 1, (64, 50), generator=g)
    torch.manual_seed(5)  # dropout
    logits = net.score(net(x))
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
    del kept
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


FEATURES = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: sasrec_net(N_ITEMS, SASRecConfig(), None),
        lambda: sasrec_net(N_ITEMS, SASRecConfig(), FEATURES),
        lambda: lstm_net(N_ITEMS, LSTMConfig(), FEATURES),
    ],
    ids=["sasrec", "sasrec+text", "lstm+text"],
)
def test_one_training_step_repeats_bit_for_bit(two_threads, make) -> None:
    first = _gradients(make, 1)
    assert first["items.ids.weight" if "items.ids.weight" in first else "embedding.weight"].abs().sum() > 0
    for junk in (3, 1001, 12345, 100003):
        again = _gradients(make, junk)
        assert again.keys() == first.keys()
        differ = [n for n in first if not torch.equal(first[n], again[n])]
        assert not differ, f"gradients of {differ} changed between identical steps"
