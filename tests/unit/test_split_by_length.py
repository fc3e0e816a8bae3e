"""Cutting length-sorted texts into forward passes: least computed tokens, bounded rows."""

import itertools
import random

import pytest

from model_api.model.predictor import split_by_length

pytestmark = pytest.mark.unit


def cost(lengths, ends, overhead):
    total, start = 0.0, 0
    for end in ends:
        total += overhead + (end - start) * lengths[end - 1]
        start = end
    return total


def brute_force(lengths, max_rows, overhead):
    n = len(lengths)
    best = None
    for mask in itertools.product([False, True], repeat=n - 1):
        ends = [i + 1 for i, cut in enumerate(mask) if cut] + [n]
        starts = [0, *ends[:-1]]
        if any(e - s > max_rows for s, e in zip(starts, ends, strict=True)):
            continue
        c = cost(lengths, ends, overhead)
        best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_the_cuts_cost_no_more_than_any_other(seed):
    rng = random.Random(seed)
    lengths = sorted(rng.randint(3, 90) for _ in range(rng.randint(1, 11)))
    max_rows, overhead = rng.randint(1, 6), rng.choice([0, 16, 128])
    ends = split_by_length(lengths, max_rows, overhead)
    starts = [0, *ends[:-1]]
    assert ends[-1] == len(lengths) and all(0 < e - s <= max_rows for s, e in zip(starts, ends, strict=True))
    assert cost(lengths, ends, overhead) == pytest.approx(brute_force(lengths, max_rows, overhead))


def test_a_long_tail_gets_its_own_pass_and_equal_lengths_share_one():
    assert split_by_length([10] * 30 + [80] * 2, max_rows=64, overhead=128) == [30, 32]
    ends = split_by_length([12] * 100, max_rows=64, overhead=128)
    assert len(ends) == 2 and ends[0] >= 36 and ends[1] == 100


def test_no_texts_no_passes():
    assert split_by_length([], max_rows=8) == []


def test_unsorted_lengths_and_bad_row_limits_are_refused():
    with pytest.raises(ValueError, match="sorted"):
        split_by_length([5, 3], max_rows=8)
    with pytest.raises(ValueError, match="max_rows"):
        split_by_length([3, 5], max_rows=0)
