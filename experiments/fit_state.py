"""Where a fine-tune is, so that it can stop and go on: the batches of an epoch, the best weights
so far, and the checkpoint of the whole loop (``OUT/checkpoint.pt``, read by ``--resume``)."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from experiments.bert_config import TrainConfig

log = logging.getLogger("experiments.train_bert")


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Shuffle, sort by length within pools of ``pool`` batches, cut batches, shuffle batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


class BestWeights:
    """The best validation score so far, its step and the model's weights then; patience left."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.score, self.step, self.stale = -1.0, 0, 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, model, score: float, step: int) -> bool:
        """Keep the weights when ``score`` is the best yet; True once ``patience`` evaluations brought no gain."""
        if score > self.score:
            self.score, self.step, self.stale = score, step, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience


@dataclass
class LoopState:
    """Where the fit loop is: the step, the smoothed loss, the curve, the epoch's batches and the
    position in them, and the seconds spent before a resume."""

    step: int = 0
    running: float = 0.0
    spent: float = 0.0
    curve: list[dict] = field(default_factory=list)
    batches: list[list[int]] | None = None
    position: int = 0

    def next_batch(self, train_ids: list[list[int]], config: TrainConfig, rng: random.Random) -> list[int]:
        if self.batches is None or self.position >= len(self.batches):
            self.batches, self.position = bucketed_batches([len(s) for s in train_ids], config.batch_size, rng), 0
        self.position += 1
        return self.batches[self.position - 1]


class Checkpoint:
    """The fit loop's whole state at its last evaluation, in ``OUT/checkpoint.pt``, so that a run
    stopped for any reason continues where it was with ``--resume``."""

    def __init__(self, config: TrainConfig) -> None:
        self.path = Path(config.out) / "checkpoint.pt"

    def save(
        self, model, optimizer, scheduler, rng: random.Random, loop: LoopState, best: BestWeights, started: float
    ) -> None:
        loop.spent = time.monotonic() - started
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng.getstate(),
            "torch_rng": torch.get_rng_state(),  # dropout's
            "loop": asdict(loop),
            "best": (best.score, best.step, best.stale, best.state),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".pt.partial")
        torch.save(state, partial)
        partial.replace(self.path)  # never a half-written checkpoint

    def restore(self, model, optimizer, scheduler, rng: random.Random, best: BestWeights) -> LoopState:
        """Load the checkpoint into the given objects and return the loop's place.

        Raises:
            FileNotFoundError: when there is no checkpoint.
        """
        if not self.path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {self.path}; run without --resume to start")
        state = torch.load(self.path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        best.score, best.step, best.stale, best.state = state["best"]
        loop = LoopState(**state["loop"])
        log.info("resumed at step %d (best %.4f at step %d)", loop.step, best.score, best.step)
        return loop

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
