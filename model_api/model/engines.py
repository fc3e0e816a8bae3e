"""Inference engines behind the predictor: eager torch, compiled int8 torch, and ONNX Runtime.

Each engine maps one forward pass's arrays to logits (numpy): padded rows (``input_ids``,
``attention_mask``), or, for the torch engines and a BERT model, packed rows of several texts
(``model_api.model.packing``).

- ``fp32``, ``bf16`` (bf16 weights and activations, fp32 logits), ``int8`` (eager dynamic
  quantization of the linear layers): plain PyTorch, ready at once.
- ``int8-static`` and ``int8-dynamic``: the model is captured with ``torch.export``, quantized
  with the PT2E flow and the x86 Inductor quantizer (static: activation ranges calibrated once on
  real tweets; dynamic: measured per batch), then compiled by Inductor, which fuses the quantize
  steps and the element-wise ops into its kernels and runs the int8 matrix products in oneDNN
  (AVX-512 VNNI). On a CPU with native bf16 (AVX-512 BF16 or AMX) the ops left in floating point
  (attention, layer norms, GELU) run in bf16 ("int8-mixed-bf16"). Compiling takes some seconds
  per process; Inductor caches its work on disk.
- ``onnx`` and ``onnx-int8``: ONNX Runtime; the model is exported on first use and cached in
  ``<model dir>/onnx/`` (or ``~/.cache/tweet-sentiment/`` when the model directory is not
  writable), the int8 one by ONNX Runtime's dynamic quantization.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from sentiment.config import PRECISIONS

log = logging.getLogger(__name__)


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
    """Logits of packed texts (:mod:`model_api.model.packing` lays them out), from a
    ``BertForSequenceClassification``."""

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


class _Logits(torch.nn.Module):
    """The classifier as a function of padded ids and mask, the form ``torch.export`` captures."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def takes_packed_rows(precision: str) -> bool:
    """Whether the engine of ``precision`` can run packed rows: the torch ones, not ONNX Runtime's."""
    return not precision.startswith("onnx")


def forward_module(model: torch.nn.Module, packed: bool) -> torch.nn.Module:
    """The model as a function of arrays: packed rows (see :mod:`model_api.model.packing`) or padded ones."""
    return PackedBertClassifier(model) if packed else _Logits(model)


class TorchEngine:
    def __init__(self, model: torch.nn.Module, precision: str = "fp32", packed: bool = False) -> None:
        model = model.eval()
        if precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the eager API's deprecation notice
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif precision == "bf16":
            model = copy.deepcopy(model).to(torch.bfloat16)
        self.model = forward_module(model, packed)

    @torch.inference_mode()
    def logits(self, *arrays: np.ndarray) -> np.ndarray:
        return self.model(*(torch.from_numpy(a) for a in arrays)).float().numpy()


class PackagedEngine:
    """A compiled engine loaded from an AOTInductor package (:mod:`model_api.model.engine_cache`): no
    compiling, ready in a second."""

    def __init__(self, package: Path) -> None:
        self.model = torch._inductor.aoti_load_package(str(package))
        self.package = package

    @torch.no_grad()
    def logits(self, *arrays: np.ndarray) -> np.ndarray:
        return self.model(*(torch.from_numpy(a) for a in arrays)).float().numpy()


def quantized_int8(
    model: torch.nn.Module,
    calibration: list[tuple[np.ndarray, ...]],
    static: bool = True,
    max_length: int = 512,
    packed: bool = False,
) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...], tuple[dict, ...]]:
    """The model captured by ``torch.export`` and quantized with the PT2E flow and the x86
    Inductor quantizer, ready for Inductor; with the example inputs and dynamic shapes it was
    captured with.

    Args:
        model: the fp32 sequence classifier.
        calibration: batches of real texts, in the engine's input form; static
            quantization fixes the activation ranges on them (dynamic uses one to trace).
        static: calibrated activation ranges (True) or ranges measured per batch (False).
        max_length: the longest sequence the engine will see.
        packed: the batches are packed rows (:mod:`model_api.model.packing`), not padded ones.
    """
    import torch._inductor.config as inductor_config
    from torch.export import Dim, export

    logging.getLogger("torchao").setLevel(logging.ERROR)  # optional CUDA kernels it cannot load here
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    if not calibration:
        raise ValueError("the compiled int8 engine needs at least one calibration batch")
    # Inductor's int8 lowering copies a tensor in a way torch warns about; nothing to act on.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._inductor\.mkldnn_lowerings")
    inductor_config.freezing = True  # constant-fold the weights into prepacked oneDNN layouts
    rows, seq = Dim("rows", min=1, max=4096), Dim("seq", min=2, max=max(3, max_length))
    dynamic = ({0: rows, 1: seq},) * (3 if packed else 2)
    if packed:
        dynamic += ({0: Dim("texts", min=1, max=4096 * max_length)},)
    example = tuple(torch.from_numpy(a) for a in calibration[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export(forward_module(model.eval(), packed), example, dynamic_shapes=dynamic).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_dynamic=not static))
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for arrays in calibration:
                prepared(*(torch.from_numpy(a) for a in arrays))
        return convert_pt2e(prepared), example, dynamic


class CompiledInt8Engine:
    """PT2E int8 quantization (x86 Inductor quantizer, :func:`quantized_int8`) compiled by
    Inductor in this process (just in time). :mod:`model_api.model.engine_setup` compiles the same
    model ahead of time and keeps it on disk (:mod:`model_api.model.engine_cache`).

    Args:
        model, calibration, static, max_length, packed: as for :func:`quantized_int8`.
        mixed_bf16: run the floating-point ops in bf16; default: when the CPU supports bf16 natively.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        calibration: list[tuple[np.ndarray, np.ndarray]],
        static: bool = True,
        max_length: int = 512,
        packed: bool = False,
        mixed_bf16: bool | None = None,
    ) -> None:
        converted, _, _ = quantized_int8(model, calibration, static, max_length, packed)
        # One graph for every size (see at_least_two): sizes that happen to be equal in the first
        # pass (two rows, two texts) must not be assumed equal ("duck sizing").
        torch.fx.experimental._config.use_duck_shape = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = torch.compile(converted, dynamic=True)
        self.static = static
        self.mixed_bf16 = bf16_supported() if mixed_bf16 is None else mixed_bf16

    @torch.no_grad()
    def logits(self, *arrays: np.ndarray) -> np.ndarray:
        texts = len(arrays[-1]) if len(arrays) == 4 else len(arrays[0])
        arrays = at_least_two(arrays)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.mixed_bf16):
            out = self.model(*(torch.from_numpy(a) for a in arrays))
        return out[:texts].float().numpy()


def at_least_two(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """The inputs of a pass with at least two rows and two texts: a pass of one row is sent twice.

    ``torch.compile`` specializes sizes of 1, so a pass of one row (or one text) would compile
    graphs of its own, each as slow to build as the general one (about 15 s here, and Inductor
    cannot cache graphs holding prepacked oneDNN weights): with this, one graph serves every
    size. The extra row costs a pass of one row a little; the duplicate results come last.
    Takes padded ``(input_ids, attention_mask)`` or packed ``(input_ids, position_ids,
    segments, first)`` arrays (:mod:`model_api.model.packing`).
    """
    rows = len(arrays[0])
    if rows >= 2:
        return arrays
    if len(arrays) == 2:
        return tuple(np.concatenate([a, a]) for a in arrays)
    input_ids, positions, segments, first = arrays
    width = input_ids.shape[1]
    return (
        np.concatenate([input_ids, input_ids]),
        np.concatenate([positions, positions]),
        np.concatenate([segments, segments]),
        np.concatenate([first, first + width]),
    )


def auto_precision() -> str:
    """The fastest engine ready at once on this CPU: eager ``int8`` where it has VNNI (int8 dot
    products: 2.8 times fp32 in docs/performance.md, "Engines", 0.2 points of accuracy), else
    ``fp32`` (without VNNI int8 gains little)."""
    return "int8" if torch.cpu._is_vnni_supported() else "fp32"


def bf16_supported() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), so bf16 ops are fast."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


class OnnxEngine:
    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]


def _cache_dir(model_path: str) -> Path:
    local = Path(model_path)
    if local.is_dir() and os.access(local, os.W_OK):
        return local / "onnx"
    key = hashlib.sha1(str(local.resolve() if local.exists() else model_path).encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "tweet-sentiment" / key


def onnx_file(model: torch.nn.Module, model_path: str, quantized: bool) -> Path:
    """Export (once) and return the ONNX file of a model, fp32 or int8."""
    folder = _cache_dir(model_path)
    fp32, int8 = folder / "model.onnx", folder / "model-int8.onnx"
    weights = Path(model_path) / "model.safetensors"
    stale = weights.is_file() and fp32.is_file() and fp32.stat().st_mtime < weights.stat().st_mtime
    if not fp32.is_file() or stale:
        folder.mkdir(parents=True, exist_ok=True)
        ids = torch.ones((2, 8), dtype=torch.long)
        mask = torch.ones((2, 8), dtype=torch.long)
        log.info("exporting %s to ONNX (%s)", model_path, fp32)
        torch.onnx.export(
            model.eval(),
            (ids, mask),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch"},
            },
        )
        int8.unlink(missing_ok=True)
    if quantized and not int8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return int8 if quantized else fp32


def make_engine(
    model: torch.nn.Module,
    model_path: str,
    precision: str,
    calibration: list[tuple[np.ndarray, ...]] | None = None,
    max_length: int = 512,
    packed: bool = False,
):
    """The engine for a precision name (see :data:`PRECISIONS`).

    ``calibration`` (batches of real texts, in the engine's input form) is needed by the compiled
    int8 engines. ``packed``: the engine takes packed rows (:mod:`model_api.model.packing`); the ONNX
    Runtime engines take padded ones only.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision in ("int8-static", "int8-dynamic"):
        return CompiledInt8Engine(
            model, calibration or [], static=precision == "int8-static", max_length=max_length, packed=packed
        )
    if packed and not takes_packed_rows(precision):
        raise ValueError("the ONNX Runtime engines take padded batches only")
    if precision.startswith("onnx"):
        return OnnxEngine(onnx_file(model, model_path, quantized=precision == "onnx-int8"))
    return TorchEngine(model, precision, packed)
