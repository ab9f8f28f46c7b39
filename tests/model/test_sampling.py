"""The sampling policy (model.sampling) on fake logits: what it draws, what it never draws, and its noise."""

import numpy as np
import pytest

from model import sampling


def draws(probs: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n draws from one row of probs [V], one per step of the noise."""
    u = sampling.noise(seed, np.arange(n), 1)[:, 0]
    return sampling.draw(np.repeat(probs[None, :], n, axis=0), u)


def test_draw_follows_the_probabilities():
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.4] + [0.0] * 70, np.float32)  # two blocks, all mass in the first
    n = 20_000
    counts = np.bincount(draws(p, n), minlength=len(p))
    expected = p * n
    assert counts[0] == 0 and counts[5:].sum() == 0
    sigma = np.sqrt(expected[1:5] * (1 - p[1:5]))
    assert np.all(np.abs(counts[1:5] - expected[1:5]) < 4 * sigma), counts[:5]


@pytest.mark.parametrize("only", [0, 63, 64, 127, 129])
def test_a_single_possible_id_is_always_drawn_even_at_the_extremes_of_u(only):
    p = np.zeros((3, 130), np.float32)  # 130 ids: two full blocks and a partial third
    p[:, only] = 0.5
    u = np.array([np.finfo(np.float64).tiny, 0.5, 1 - 2**-53])
    assert sampling.draw(p, u).tolist() == [only] * 3


def test_ids_of_zero_probability_are_never_drawn_at_block_borders():
    p = np.zeros(256, np.float32)
    p[[63, 64, 191]] = [1e-30, 1.0, 1e-30]  # tiny but possible ids sit beside block borders
    got = set(draws(p, 5000).tolist())
    assert got <= {63, 64, 191} and 64 in got


def test_rows_draw_independently():
    probs = np.zeros((2, 10), np.float32)
    probs[0, 3] = probs[1, 7] = 1.0
    assert sampling.draw(probs, np.array([0.9, 0.1])).tolist() == [3, 7]


def test_temperature_mask_and_filters():
    logits = np.array([[5.0, 1.0, 4.0, 3.0, 2.0, 0.0]] * 4, np.float32)
    mask = sampling.never_mask(["[UNK]", "a", "b", "c", "d", "e"])
    assert mask[0] == -np.inf and np.all(mask[1:] == 0)
    ones = np.ones(4)
    p = sampling.probabilities(logits, ones, np.zeros(4, int), ones, mask)
    assert p[0, 0] == 0 and np.isclose(p[0].sum(), 1)  # [UNK] (id 0) is masked even as the likeliest
    cold = sampling.probabilities(logits, ones * 1e-3, np.zeros(4, int), ones, mask)
    assert cold[0, 2] > 0.999  # near zero temperature: the likeliest allowed id
    top2 = sampling.probabilities(logits, ones, np.full(4, 2), ones, mask)
    assert set(np.flatnonzero(top2[0])) == {2, 3}  # the two likeliest ids left once [UNK] is masked
    nucleus = sampling.probabilities(logits, ones, np.zeros(4, int), np.full(4, 1e-6), mask)
    assert set(np.flatnonzero(nucleus[0])) == {2}  # a tiny nucleus keeps only the likeliest
    mixed = sampling.probabilities(logits, ones, np.array([0, 1, 0, 3]), np.array([1.0, 1.0, 0.5, 1.0]), mask)
    assert np.count_nonzero(mixed[0]) == 5 and np.count_nonzero(mixed[1]) == 1
    assert np.count_nonzero(mixed[3]) == 3  # each row keeps its own filters


def test_private_use_tokens_are_never_drawn():
    mask = sampling.never_mask(["[UNK]", "甲", "\ue000", "乙", "\uf8ff"])
    assert np.isinf(mask[[0, 2, 4]]).all() and np.all(mask[[1, 3]] == 0)


def test_noise_depends_on_seed_step_and_row_only():
    whole = sampling.noise(7, np.arange(400), 3)
    halves = np.concatenate([sampling.noise(7, np.arange(200), 3), sampling.noise(7, 200 + np.arange(200), 3)])
    np.testing.assert_array_equal(whole, halves)
    assert np.all((whole > 0) & (whole < 1))
    assert not np.array_equal(whole[:, 0], whole[:, 1])  # rows differ
    assert not np.array_equal(whole, sampling.noise(8, np.arange(400), 3))  # seeds differ
    flat = sampling.noise(1, np.arange(20_000), 1).ravel()
    assert abs(flat.mean() - 0.5) < 0.01 and abs(np.mean(flat < 0.1) - 0.1) < 0.01


def test_log_softmax_is_normalised():
    logits = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]], np.float32)
    logp = sampling.log_softmax(logits)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0)
    assert logp[1, 0] == 0.0
