from collections import deque

import pytest

from model_api.runner.batching import BudgetQueue, PassCost, shape_batch, texts_within
from model_api.runner.model_process import Assembler

pytestmark = pytest.mark.unit


def test_the_budget_caps_a_micro_batch_by_the_measured_cost_per_text():
    assert texts_within(0.100, 0.001, 256) == 100
    assert texts_within(0.100, 0.0001, 256) == 256  # cheap texts: the configured maximum
    assert texts_within(0.100, 1.0, 256) == 64  # never so few that passes cost mostly their overhead
    assert texts_within(0.100, 1.0, 8) == 8
    assert texts_within(0.0, 0.001, 256) == 256
    assert texts_within(0.100, 0.001, 256, least=16) == 100  # 0: no budget


def test_pass_cost_follows_the_measured_predictions_and_ignores_tiny_ones():
    cost = PassCost(seconds_per_text=0.002, weight=0.5, min_texts=8)
    cost.observe(2, 1.0)  # too few texts to tell the cost per text
    assert cost.seconds_per_text == 0.002
    cost.observe(100, 0.1)  # 1 ms per text
    assert cost.seconds_per_text == pytest.approx(0.0015)


def test_single_texts_go_first_and_a_large_request_is_cut_to_the_budget():
    small = deque([(1, ["a"]), (2, ["b"])])
    bulk = deque([(3, [f"t{i}" for i in range(10)]), (4, ["x", "y"])])
    batch = shape_batch(small, bulk, 6)
    assert batch == [((1, 0, 1, 1), ["a"]), ((2, 0, 1, 1), ["b"]), ((3, 0, 4, 10), ["t0", "t1", "t2", "t3"])]
    small.append((5, ["c"]))  # a single text arriving now passes the rest of the large request
    assert shape_batch(small, bulk, 6) == [((5, 0, 1, 1), ["c"]), ((3, 4, 9, 10), ["t4", "t5", "t6", "t7", "t8"])]
    assert shape_batch(small, bulk, 6) == [((3, 9, 10, 10), ["t9"]), ((4, 0, 2, 2), ["x", "y"])]
    assert not small and not bulk


def test_a_batch_always_takes_something_even_over_budget():
    assert shape_batch(deque([(1, ["a", "b", "c"])]), deque(), 1) == [((1, 0, 3, 3), ["a", "b", "c"])]
    bulk = deque([(2, ["a", "b", "c"])])
    assert shape_batch(deque(), bulk, 0) == [((2, 0, 1, 3), ["a"])]


def test_budget_queue_sorts_requests_by_size_and_closes():
    waiting = BudgetQueue(small_texts=2)
    waiting.put((1, [f"t{i}" for i in range(5)]))
    waiting.put((2, ["single"]))
    assert waiting.take(3, 0.0) == [((2, 0, 1, 1), ["single"]), ((1, 0, 2, 5), ["t0", "t1"])]
    waiting.put(None)
    assert waiting.take(3, 10.0) == [((1, 2, 5, 5), ["t2", "t3", "t4"])]  # closed: no waiting
    assert waiting.take(3, 10.0) is None


def test_slices_are_put_back_together_and_a_failed_slice_fails_its_request_once():
    replies = []
    assembled = Assembler(replies.extend)
    assembled.reply([((1, 0, 2, 4), True, ["A", "B"]), ((2, 0, 1, 1), True, ["S"])])
    assert replies == [(2, True, ["S"])]
    assembled.reply([((1, 2, 4, 4), True, ["C", "D"])])
    assert replies[-1] == (1, True, ["A", "B", "C", "D"])
    assembled.reply([((3, 0, 2, 6), False, "TypeError: bad")])
    assembled.reply([((3, 2, 4, 6), True, ["x", "y"])])  # later slices of a failed request are dropped
    assembled.reply([((3, 4, 6, 6), True, ["z", "w"])])
    assert replies[-1] == (3, False, "TypeError: bad") and len(replies) == 3
    assert not assembled._open and not assembled._failed


def test_large_requests_alone_take_full_micro_batches_and_the_budget_holds_while_small_ones_are_about():
    now = [0.0]
    waiting = BudgetQueue(small_texts=2, small_seconds=1.0, clock=lambda: now[0])
    waiting.put((1, [f"t{i}" for i in range(10)]))
    assert waiting.take(3, 0.0, full_texts=8) == [((1, 0, 8, 10), [f"t{i}" for i in range(8)])]  # no small ones
    waiting.put((2, ["single"]))
    assert waiting.take(1, 0.0, full_texts=8) == [((2, 0, 1, 1), ["single"])]
    waiting.put((3, [f"u{i}" for i in range(10)]))
    now[0] = 0.5  # a small request came half a second ago: the budget holds
    assert waiting.take(3, 0.0, full_texts=8) == [((1, 8, 10, 10), ["t8", "t9"]), ((3, 0, 1, 10), ["u0"])]
    now[0] = 2.0
    assert waiting.take(3, 0.0, full_texts=8) == [((3, 1, 9, 10), [f"u{i}" for i in range(1, 9)])]
