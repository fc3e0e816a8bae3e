"""Inference engines behind the predictor: torch (fp32, bf16 autocast, int8 dynamic) and ONNX Runtime.

Each engine maps a padded batch of token ids to logits (numpy). ONNX models are exported from the
torch model on first use and cached in ``<model dir>/onnx/`` (or ``~/.cache/tweet-sentiment/``
when the model directory is not writable), the int8 one by ONNX Runtime's dynamic quantization.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from sentiment.config import PRECISIONS

log = logging.getLogger(__name__)


class TorchEngine:
    def __init__(self, model: torch.nn.Module, precision: str = "fp32") -> None:
        model = model.eval()
        if precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        self.bf16 = precision == "bf16"

    @torch.inference_mode()
    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.float().numpy()


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


def make_engine(model: torch.nn.Module, model_path: str, precision: str):
    """The engine for a precision name (see :data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision.startswith("onnx"):
        return OnnxEngine(onnx_file(model, model_path, quantized=precision == "onnx-int8"))
    return TorchEngine(model, precision)
