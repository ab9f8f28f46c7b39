"""The 金庸味 ruler (model.flavour) on made-up figures: percentiles per length band, scores 0-100."""

import numpy as np
import pytest

from model.flavour import BANDS, Flavour, band_of


def made_up(seed=0) -> Flavour:
    """Short lines cost 4 ± 1 nats/char, every longer band 3 ± 0.5: 2,000 lines a band."""
    rng = np.random.default_rng(seed)
    lengths = np.repeat([5, 15, 30, 60, 120], 2000)
    nats = np.where(lengths <= BANDS[0], rng.normal(4, 1, lengths.size), rng.normal(3, 0.5, lengths.size))
    return Flavour.measured(nats, lengths, "made up")


def test_a_score_is_the_share_of_the_novels_lines_that_cost_more():
    ruler = made_up()
    assert ruler.lines == [2000] * 5
    assert abs(ruler.score(3.0, 30) - 50) <= 3  # the band's median
    assert abs(ruler.score(3.5, 30) - 16) <= 3  # one deviation worse: ~16 % cost more still
    assert ruler.score(1.0, 30) == 100 and ruler.score(9.0, 30) == 0  # past the ends: clipped
    scores = [ruler.score(x, 30) for x in np.linspace(1, 6, 40)]
    assert scores == sorted(scores, reverse=True)  # the more it costs, the lower


def test_the_band_is_chosen_by_length():
    ruler = made_up()
    assert [band_of(n) for n in (1, 10, 11, 20, 40, 41, 80, 81, 500)] == [0, 0, 1, 1, 2, 3, 3, 4, 4]
    assert abs(ruler.score(4.0, 5) - 50) <= 3  # median of the short lines' band
    assert ruler.score(4.0, 30) <= 3  # the same cost is poor for a longer line


def test_the_ruler_travels_in_the_card_and_bad_ones_are_none():
    ruler = made_up()
    again = Flavour.from_card(ruler.to_json())
    assert again == ruler
    assert Flavour.from_card(None) is None
    assert Flavour.from_card({"percentiles": [[1.0] * 101] * 4, "lines": [1] * 5}) is None  # a band short
    assert Flavour.from_card({"percentiles": [[1.0] * 100] * 5, "lines": [1] * 5}) is None  # a percentile short


def test_a_band_without_lines_borrows_the_nearest_and_none_at_all_is_an_error():
    ruler = Flavour.measured(np.array([3.0, 3.2, 3.4]), np.array([15, 16, 17]))
    assert ruler.lines == [0, 3, 0, 0, 0]
    assert ruler.percentiles[0] == ruler.percentiles[1] == ruler.percentiles[4]
    with pytest.raises(ValueError):
        Flavour.measured(np.array([]), np.array([]))
