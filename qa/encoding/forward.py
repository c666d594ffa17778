"""Forward passes of the query model: the bare pass for one question, packed passes for a batch.

A batch padded to its longest question spends much of its work on padding, since questions vary a lot in
length. ``packed_encoder`` instead lays the questions of a batch end to end in
one row, lets each token attend only to its own question (a block-diagonal mask), restarts positions at
every question and mean-pools each question's own tokens: the same model and the same vectors (checked at
start against ``SentenceTransformer.encode``), with no padding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from qa.encoding.model import Embedder

log = logging.getLogger(__name__)

Encode = Callable[[list[str]], np.ndarray]

# Tokens laid end to end in one packed pass. Attention grows with the square of a pass's length while the
# rest of the model grows linearly, so very long rows lose what packing saves; a few hundred tokens keeps
# the quadratic part small while a typical batch still fits in one or two passes (bench/throughput.py).
PACK_TOKENS = 320
PROBE = [
    "PD-1 blockade in melanoma",
    "Which trials combine TLR9 agonists with pembrolizumab in advanced disease?",
    "CTLA-4",
    "How do nanoparticles deliver STING agonists to the tumour microenvironment and what is the response rate?",
]


def direct_encoder(embedder: Embedder) -> Encode:
    """One forward pass per batch without ``SentenceTransformer.encode``'s per-call bookkeeping (sorting,
    chunking, device moves), which would cost more than the pass itself for a short question. Used only if it gives the same vectors as ``Embedder.encode``."""
    import torch

    model = embedder.model
    preprocess = getattr(model, "preprocess", None) or model.tokenize

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            features = preprocess(texts)
            vectors = model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return np.ascontiguousarray(vectors.float().numpy(), dtype=np.float32)

    if _same_vectors(encode, embedder):
        return encode
    log.warning("query model: direct forward pass differs from Embedder.encode; using Embedder.encode")
    return embedder.encode


def packed_encoder(embedder: Embedder) -> Encode:
    """Batches without padding (see the module docstring); one question goes through ``direct_encoder``.

    Falls back to the direct pass for every batch when the model is not a mean-pooled, normalised transformer
    that takes position ids and a ready-made attention mask, or when packing changes the vectors.
    """
    single = direct_encoder(embedder)
    try:
        packed = _packed_pass(embedder)
        ok = _same_vectors(packed, embedder)
    except Exception as exc:  # another architecture: no packing
        log.info("query model: no packed batches (%s: %s)", type(exc).__name__, exc)
        return single
    if not ok:
        log.warning("query model: packed batches differ from Embedder.encode; batches are padded instead")
        return single

    def encode(texts: list[str]) -> np.ndarray:
        if len(texts) < 2:
            return single(texts)
        return packed(texts)

    return encode


def _packed_pass(embedder: Embedder) -> Encode:
    import torch

    model = embedder.model
    names = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    if (
        names[:3] != ["Transformer", "Pooling", "Normalize"]
        or getattr(pooling, "pooling_mode", None) != "mean"
    ):
        raise ValueError(f"modules {names} are not Transformer, mean Pooling, Normalize")
    transformer: Any = model[0].auto_model
    tokenizer = model.tokenizer
    limit = model.get_max_seq_length() or 256

    def encode(texts: list[str]) -> np.ndarray:
        ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        out = np.empty((len(texts), embedder.dim), dtype=np.float32)
        start = 0
        while start < len(texts):  # questions in order, PACK_TOKENS at most per pass (one at least)
            end, tokens = start + 1, len(ids[start])
            while end < len(texts) and tokens + len(ids[end]) <= PACK_TOKENS:
                tokens += len(ids[end])
                end += 1
            out[start:end] = _one_pack(ids[start:end])
            start = end
        return out

    def _one_pack(rows: list[list[int]]) -> np.ndarray:
        with torch.inference_mode():
            lengths = torch.tensor([len(r) for r in rows])
            flat = torch.tensor([t for r in rows for t in r]).unsqueeze(0)
            positions = torch.cat([torch.arange(n) for n in lengths.tolist()]).unsqueeze(0)
            owner = torch.repeat_interleave(torch.arange(len(rows)), lengths)
            mask = (owner[:, None] == owner[None, :])[None, None]  # each token sees its own question only
            hidden = transformer(
                input_ids=flat,
                attention_mask=mask,
                position_ids=positions,
                token_type_ids=torch.zeros_like(flat),
            ).last_hidden_state[0]
            sums = torch.zeros(len(rows), hidden.shape[1], dtype=hidden.dtype).index_add_(0, owner, hidden)
            vectors = torch.nn.functional.normalize(sums / lengths[:, None], p=2, dim=1)
        return vectors.float().numpy()

    return encode


def _same_vectors(encode: Encode, embedder: Embedder) -> bool:
    try:
        return bool(np.allclose(encode(PROBE), embedder.encode(PROBE), atol=1e-5))
    except Exception as exc:  # an API change in sentence-transformers or transformers
        log.info("query model: probe failed (%s: %s)", type(exc).__name__, exc)
        return False
