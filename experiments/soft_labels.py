"""A teacher's soft labels of a transfer set, kept as parquet keyed by a hash of each text, so
that a student can be distilled again without the teacher.

Usage: python -m experiments.soft_labels --teacher DIR[+DIR ...] --out FILE.parquet
       [--sentiment140-rows N] [--three-class FILE] [--precision bf16]

The transfer set is every three-class training and validation tweet (SemEval's, never its
held-out topics or its test split) and a seeded sample of Sentiment140's training texts, read
without their emoticon labels. Each row holds ``key`` (:func:`text_key`) and the teacher's
``p_negative``, ``p_neutral`` and ``p_positive``; the file's metadata names the teacher.
``python -m experiments.train_bert --soft-labels FILE`` distils from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLUMNS = ("p_negative", "p_neutral", "p_positive")


def text_key(text: str) -> str:
    """The key of a text in a soft-label file: 16 hex digits of its BLAKE2b hash."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def write_soft_labels(path: Path, texts: Sequence[str], probs: np.ndarray, about: dict) -> Path:
    """Write one row per distinct text: its key and its (negative, neutral, positive) probabilities.

    Raises:
        ValueError: when ``probs`` is not one row of three per text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (len(texts), 3):
        raise ValueError(f"soft labels: {probs.shape} probabilities for {len(texts)} texts; expected ({len(texts)}, 3)")
    keys = [text_key(t) for t in texts]
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # one row per text
    rows = sorted(first.values())
    table = pa.table(
        {"key": [keys[i] for i in rows], **{c: probs[rows, j] for j, c in enumerate(COLUMNS)}},
    ).replace_schema_metadata({"tweet_sentiment.soft_labels": json.dumps(about)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


class SoftLabels:
    """A soft-label file, looked up by text."""

    def __init__(self, path: str | Path) -> None:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        missing = {"key", *COLUMNS} - set(table.column_names)
        if missing:
            raise ValueError(f"{path}: not a soft-label file (no column {sorted(missing)})")
        self.path = Path(path)
        self.about = json.loads((table.schema.metadata or {}).get(b"tweet_sentiment.soft_labels", b"{}"))
        self.index = {k: i for i, k in enumerate(table.column("key").to_pylist())}
        self.probs = np.stack([table.column(c).to_numpy() for c in COLUMNS], axis=1).astype(np.float64)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self.index

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """The (negative, neutral, positive) rows of ``texts``.

        Raises:
            KeyError: naming how many texts have no soft label, and the first of them.
        """
        rows = [self.index.get(text_key(t), -1) for t in texts]
        absent = [t for t, r in zip(texts, rows, strict=True) if r < 0]
        if absent:
            raise KeyError(
                f"{len(absent)} of {len(texts)} texts have no soft label in {self.path} (first: {absent[0][:80]!r}); "
                "build the file from the same data with python -m experiments.soft_labels"
            )
        return self.probs[rows]


def transfer_texts(
    three_class: Path | None, sentiment140: Sequence[Path], sentiment140_rows: int, seed: int
) -> list[str]:
    """The three-class training and validation texts, then a seeded sample of Sentiment140's
    training texts (the splits every training run uses, so no held-out text is in it)."""
    from experiments.data import SplitSpec, load_split, load_three_class_split

    spec = SplitSpec(seed=seed)
    texts: list[str] = []
    if three_class is not None:
        three = load_three_class_split(three_class, spec)
        texts += three.texts["train"] + three.texts["val"]
    if sentiment140_rows and sentiment140:
        pool = load_split(list(sentiment140), spec).texts["train"]
        texts += random.Random(seed).sample(pool, min(sentiment140_rows, len(pool)))
    return texts


def main(argv: list[str] | None = None) -> int:
    from experiments.data import SEED, SEMEVAL_FILE, default_training_files, shared_file
    from experiments.distillation import teacher_probabilities
    from sentiment.logs import setup_logging

    p = argparse.ArgumentParser(prog="python -m experiments.soft_labels", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="model directories (or .joblib pipelines) joined by '+'")
    p.add_argument("--out", type=Path, required=True, help="the parquet file to write")
    p.add_argument("--three-class", type=Path, default=None, help="label,text file (default: the shared SemEval)")
    p.add_argument("--data", nargs="+", type=Path, default=None, help="Sentiment140 files (default: the shared data)")
    p.add_argument("--sentiment140-rows", type=int, default=60_000, help="Sentiment140 texts in the transfer set")
    p.add_argument("--precision", default="bf16", help="the engine that scores the teacher")
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    setup_logging()
    three = args.three_class or shared_file(SEMEVAL_FILE)
    files = args.data or (default_training_files() if args.sentiment140_rows else [])
    texts = transfer_texts(three, files, args.sentiment140_rows, args.seed)
    if not texts:
        p.error("no transfer texts: give --three-class or --data")
    probs = teacher_probabilities(args.teacher, texts, args.precision, classes=3)
    about = {"teacher": args.teacher, "precision": args.precision, "texts": len(texts), "seed": args.seed}
    write_soft_labels(args.out, texts, probs, about)
    print(f"{len(texts)} soft labels of {args.teacher} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
