"""Sequence packing: rows of whole texts, their inputs, and a packed forward pass that scores each
text exactly as on its own."""

import random

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from model_api.model.engines import PackedBertClassifier, at_least_two, can_pack
from model_api.model.packing import pack_rows, packed_arrays, padded_arrays

pytestmark = pytest.mark.unit


def test_every_text_lands_in_exactly_one_row_within_the_width():
    rng = random.Random(3)
    lengths = [rng.randint(1, 64) for _ in range(500)]
    rows = pack_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(500))
    fills = [sum(lengths[i] for i in row) for row in rows]
    assert max(fills) <= 64
    assert fills == sorted(fills, reverse=True)  # fullest first
    # Best fit decreasing stays within 11/9 of the optimum (+ 1); the optimum is at least the volume bound.
    assert len(rows) <= 11 / 9 * -(-sum(lengths) // 64) + 1


def test_texts_that_fill_rows_exactly_are_paired():
    assert sorted(sorted(row) for row in pack_rows([40, 24, 30, 34, 64], 64)) == [[0, 1], [2, 3], [4]]


def test_padded_rows_hold_each_text_then_padding_to_the_longest():
    input_ids, mask = padded_arrays([[5, 6, 7], [8], [9, 10]], pad=0)
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert input_ids.dtype == mask.dtype == np.int64


@pytest.mark.parametrize("lengths", [[3, 65], [0, 4]])
def test_a_text_that_cannot_fit_a_row_is_refused(lengths):
    with pytest.raises(ValueError, match="every text must have 1 to 64 tokens"):
        pack_rows(lengths, 64)


def test_packed_arrays_restart_positions_and_point_at_each_first_token():
    token_ids = [[101, 7, 8, 102], [101, 9, 102], [101, 5, 6, 4, 3, 102]]
    texts, (ids, positions, segments, first) = packed_arrays(token_ids, [[2, 1], [0]], pad=0)
    assert texts == [2, 1, 0]
    assert ids.shape == (2, 9)  # the fullest row: 6 + 3 tokens
    assert ids[0].tolist() == [101, 5, 6, 4, 3, 102, 101, 9, 102]
    assert ids[1].tolist() == [101, 7, 8, 102, 0, 0, 0, 0, 0]
    assert positions[0].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    assert segments.tolist() == [[1, 1, 1, 1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 0, 0, 0, 0, 0]]
    assert ids.reshape(-1)[first].tolist() == [101, 101, 101]
    assert first.tolist() == [0, 6, 9]


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    config._attn_implementation = "eager"
    return BertForSequenceClassification(config).eval()


def test_a_packed_pass_scores_each_text_as_on_its_own():
    model = tiny_bert()
    rng = random.Random(5)
    token_ids = [[101, *(rng.randrange(5, 100) for _ in range(rng.randint(1, 20))), 102] for _ in range(12)]
    texts, arrays = packed_arrays(token_ids, pack_rows([len(t) for t in token_ids], 32), pad=0)
    with torch.no_grad():
        packed = PackedBertClassifier(model)(*(torch.from_numpy(a) for a in arrays)).numpy()
        every_token = PackedBertClassifier(model, first_tokens_only=False)(*(torch.from_numpy(a) for a in arrays))
        alone = np.concatenate([model(input_ids=torch.tensor([t])).logits.numpy() for t in token_ids])
    assert len({len(row) for row in pack_rows([len(t) for t in token_ids], 32)}) > 1  # rows hold several texts
    np.testing.assert_allclose(packed, alone[texts], atol=1e-5)
    np.testing.assert_allclose(every_token.numpy(), alone[texts], atol=1e-5)


def test_only_bert_classifiers_are_packed():
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2))
    assert can_pack(tiny_bert()) and not can_pack(distil)
    with pytest.raises(ValueError, match="packing needs a BERT sequence classifier"):
        PackedBertClassifier(distil)


@pytest.mark.parametrize("packed", [True, False])
def test_a_pass_of_one_row_is_sent_as_two_with_the_same_results_first(packed):
    model = tiny_bert()
    token_ids = [[101, 7, 8, 9, 102], [101, 11, 102]]
    if packed:
        texts, arrays = packed_arrays(token_ids, [[0, 1]], pad=0)  # one row holding both texts
        forward = PackedBertClassifier(model)
    else:
        arrays = padded_arrays(token_ids[:1], pad=0)  # one row, one text
        forward = lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits  # noqa: E731
    doubled = at_least_two(arrays)
    assert len(doubled[0]) == 2 and all(len(a) == 2 * len(b) for a, b in zip(doubled, arrays, strict=True))
    with torch.no_grad():
        once = forward(*(torch.from_numpy(a) for a in arrays)).numpy()
        twice = forward(*(torch.from_numpy(a) for a in doubled)).numpy()
    np.testing.assert_allclose(twice[: len(once)], once, atol=1e-6)
    np.testing.assert_allclose(twice[len(once) :], once, atol=1e-6)
    assert at_least_two(doubled) is doubled  # two rows or more are sent as they are
