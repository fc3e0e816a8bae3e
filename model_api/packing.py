"""Sequence packing: several texts share one row of a forward pass, none of them padded.

A batch of tweets padded to its longest computes many padding tokens, and a batch cut into passes
by length pays each pass's fixed cost.
Packing puts whole texts one after another into rows of ``width`` tokens (best fit, longest
first), restarts the position ids at each text and lets attention see only the tokens of the
same text (a block-diagonal mask), so every text is scored exactly as on its own. Each text's
first token ([CLS]) is then taken from the flat output and classified.

:class:`PackedBertClassifier` is the forward pass for BERT-architecture classifiers
(``BertForSequenceClassification``: absolute position ids, a pooler on [CLS]); other
architectures are scored padded (:func:`can_pack`, :func:`padded_arrays`), as the training loop
also pads its batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


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


def can_pack(model: torch.nn.Module) -> bool:
    """Whether :class:`PackedBertClassifier` can run ``model``."""
    bert = getattr(model, "bert", None)
    return (
        getattr(model.config, "model_type", None) == "bert"
        and getattr(bert, "pooler", None) is not None
        and hasattr(model, "classifier")
        and getattr(model.config, "position_embedding_type", "absolute") == "absolute"
    )


class PackedBertClassifier(torch.nn.Module):
    """Logits of packed texts, from a ``BertForSequenceClassification`` (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, first_tokens_only: bool = True) -> None:
        super().__init__()
        if not can_pack(model):
            raise ValueError(f"packing needs a BERT sequence classifier, got {type(model).__name__}")
        self.bert = model.bert
        self.classifier = model.classifier
        self.first_tokens_only = first_tokens_only  # the last layer for the first tokens alone (same results)

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, segments: torch.Tensor, first: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.bert.embeddings(input_ids=input_ids, position_ids=position_ids)
        # Each token attends to the tokens of its own text: an additive mask, [rows, 1, width, width].
        visible = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
        mask = torch.zeros(visible.shape, dtype=hidden.dtype).masked_fill(~visible, torch.finfo(hidden.dtype).min)
        if not self.first_tokens_only:  # every layer for every token: for comparison (benchmarks.last_layer)
            hidden = self.bert.encoder(hidden, attention_mask=mask[:, None]).last_hidden_state
            cls = hidden.flatten(0, 1).index_select(0, first)
            return self.classifier(self.bert.pooler.activation(self.bert.pooler.dense(cls)))
        *layers, last = self.bert.encoder.layer
        for layer in layers:
            hidden = layer(hidden, mask[:, None])
        # What each text's first token sees: its own text, [texts, width].
        row = torch.div(first, segments.shape[1], rounding_mode="floor")
        own = segments.index_select(0, row) == segments.flatten().index_select(0, first)[:, None]
        seen = torch.zeros(own.shape, dtype=hidden.dtype).masked_fill(~own, torch.finfo(hidden.dtype).min)
        cls = first_token_output(last, hidden, seen, first, row)
        pooled = self.bert.pooler.activation(self.bert.pooler.dense(cls))
        return self.classifier(pooled)


def first_token_output(
    layer: torch.nn.Module, hidden: torch.Tensor, seen: torch.Tensor, first: torch.Tensor, row: torch.Tensor
) -> torch.Tensor:
    """The output of a BERT encoder ``layer`` at the flat positions ``first`` only: what the pooler
    reads of the last layer.

    Keys and values are computed for every token (each first token attends to its whole text), but
    the query, the attention output, the feed-forward block and the layer norms only for the
    first tokens: about five sixths of the last layer's work skipped, with the same result as the
    full layer at those positions (eager attention, as ``BertSelfAttention`` with
    ``attn_implementation="eager"``). ``hidden`` is ``[rows, width, size]``; ``seen`` is the
    additive attention mask of each first token, ``[texts, width]``; ``row`` the row of each text.
    """
    attention = layer.attention.self
    rows, width, size = hidden.shape
    heads, head = attention.num_attention_heads, attention.attention_head_size
    texts = first.shape[0]
    queried = hidden.flatten(0, 1).index_select(0, first)  # [texts, size]
    query = attention.query(queried).view(texts, heads, 1, head)
    keys = attention.key(hidden).view(rows, width, heads, head).transpose(1, 2).index_select(0, row)
    values = attention.value(hidden).view(rows, width, heads, head).transpose(1, 2).index_select(0, row)
    scores = torch.matmul(query, keys.transpose(2, 3)) * attention.scaling + seen[:, None, None, :]
    weights = torch.softmax(scores, dim=-1)
    context = torch.matmul(weights, values).reshape(texts, size)
    attended = layer.attention.output(context, queried)
    return layer.output(layer.intermediate(attended), attended)
