"""Shared, session-scoped fixtures for the eval tests (real MovieLens-100k, small synthetic data)."""

from __future__ import annotations

import hashlib

import pytest

from eval import Dataset, leave_one_out, load_ml100k, make_synthetic


def _fingerprint(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for e in dataset.interactions:
        h.update(f"{e.user_id}|{e.item_id}|{e.rating}|{e.timestamp};".encode())
    for uid, seq in dataset.sequences.items():
        h.update(f"{uid}:{len(seq)}:{seq[0].item_id}:{seq[-1].item_id};".encode())
    h.update(str(len(dataset.items)).encode())
    return h.hexdigest()


@pytest.fixture(scope="session")
def _ml100k_shared() -> tuple[Dataset, str]:
    dataset = load_ml100k()
    return dataset, _fingerprint(dataset)


@pytest.fixture
def ml100k(_ml100k_shared: tuple[Dataset, str]) -> Dataset:
    """The real ML-100k from the recbole wheel; the test fails if it mutates the shared copy."""
    dataset, before = _ml100k_shared
    yield dataset
    assert _fingerprint(dataset) == before, "test mutated the shared ML-100k dataset"


@pytest.fixture(scope="session")
def ml100k_loo(_ml100k_shared: tuple[Dataset, str]):
    return leave_one_out(_ml100k_shared[0])


@pytest.fixture(scope="session")
def sequential_synthetic():
    """Small synthetic data with a strong planted successor pattern (LSTM learns it, popularity cannot)."""
    return make_synthetic(
        n_users=150, n_items=120, seed=3, n_categories=4, min_events=25, max_events=40,
        p_sequential=0.95, p_noise=0.0, p_periodic=0.0,
    )
