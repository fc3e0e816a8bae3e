"""Sequence packing: several texts share one row of a forward pass, none of them padded.

A batch of tweets padded to its longest computes many padding tokens, and a batch cut into passes
by length pays each pass's fixed cost.
Packing puts whole texts one after another into rows of ``width`` tokens (best fit, longest
first), restarts the position ids at each text and lets attention see only the tokens of the
same text (a block-diagonal mask), so every text is scored exactly as on its own. Each text's
first token ([CLS]) is then taken from the flat output and classified.

This module lays the texts out (rows, positions, segments, first tokens);
:class:`model_api.model.engines.PackedBertClassifier` is the forward pass over them for BERT-architecture
classifiers (``BertForSequenceClassification``: absolute position ids, a pooler on [CLS]); other
architectures are scored padded (:func:`model_api.model.engines.can_pack`, :func:`padded_arrays`), as the
training loop also pads its batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack_rows(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices of the texts each row holds, rows of at most ``width`` tokens.

    Best fit decreasing: the longest text first, each into the fullest row it still fits in.
    Rows come out fullest first.

    Raises:
        ValueError: if a text is longer than ``width`` or empty.
    """
    if lengths and (max(lengths) > width or min(lengths) < 1):
        raise ValueError(f"every text must have 1 to {width} tokens, got {min(lengths)} to {max(lengths)}")
    rows: list[list[int]] = []
    room: list[int] = []
    by_room: list[list[int]] = [[] for _ in range(width + 1)]  # open rows by the tokens they have left
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        r = next((by_room[left].pop() for left in range(n, width + 1) if by_room[left]), None)
        if r is None:
            r = len(rows)
            rows.append([])
            room.append(width)
        rows[r].append(i)
        room[r] -= n
        by_room[room[r]].append(r)
    order = sorted(range(len(rows)), key=lambda r: room[r])
    return [rows[r] for r in order]


def padded_arrays(token_ids: Sequence[Sequence[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` of one padded pass: a row per text, each padded with ``pad``
    to the longest text's length (mask 1 on the text's tokens, 0 on the padding)."""
    width = max(len(ids) for ids in token_ids)
    input_ids = np.full((len(token_ids), width), pad, dtype=np.int64)
    mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    return input_ids, mask


def packed_arrays(
    token_ids: Sequence[Sequence[int]], rows: Sequence[Sequence[int]], pad: int
) -> tuple[list[int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The inputs of one packed pass over ``rows`` (lists of indices into ``token_ids``).

    Returns ``(texts, (input_ids, position_ids, segments, first))``: ``texts`` lists the text
    indices in the order their logits come out; ``segments`` numbers the texts of a row from 1
    (0: padding); ``first`` is the flat index (row x width + column) of each text's first token.
    The width is that of the fullest row.
    """
    width = max(sum(len(token_ids[i]) for i in row) for row in rows)
    shape = (len(rows), width)
    input_ids = np.full(shape, pad, dtype=np.int64)
    positions = np.zeros(shape, dtype=np.int64)
    segments = np.zeros(shape, dtype=np.int64)
    texts: list[int] = []
    first: list[int] = []
    for r, row in enumerate(rows):
        column = 0
        for s, i in enumerate(row, start=1):
            ids = token_ids[i]
            end = column + len(ids)
            input_ids[r, column:end] = ids
            positions[r, column:end] = np.arange(len(ids))
            segments[r, column:end] = s
            texts.append(i)
            first.append(r * width + column)
            column = end
    return texts, (input_ids, positions, segments, np.asarray(first, dtype=np.int64))
