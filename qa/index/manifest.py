"""The index manifest: what built the index, so a mismatch with the current settings or corpus is refused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.corpus import file_sha256
from qa.errors import IndexCorrupt

MANIFEST_NAME = "manifest.json"
# 2: passages, sentences and documents in store.sqlite3, float16 sentence vectors, file sizes recorded
FORMAT_VERSION = 2
# Files up to this size are hashed at every load; larger ones (the vectors, indexes and tables of a big
# corpus: GBs at a million passages) are checked by size there, and by hash with ``verify_files(full=True)``.
HASH_ON_LOAD_BYTES = 64 << 20
# Text whose keyword tokens change whenever the tokenizer's behaviour does.
_TOKENIZER_PROBE = (
    "PD-L1 SD-101 CD8+ T cells (NCT02983045) 59.5% IFN-γ anti-PD-1 Tumour cells were treated, e.g. x."
)


def tokenizer_signature() -> str:
    """A short hash of how the keyword tokenizer treats a probe text: a changed tokenizer needs a rebuild."""
    from qa.index.keyword import TOKENIZER_VERSION, tokenize

    probe = json.dumps([TOKENIZER_VERSION, tokenize(_TOKENIZER_PROBE)])
    return hashlib.sha256(probe.encode()).hexdigest()[:16]


@dataclass
class IndexManifest:
    model: str
    model_weights_sha256: str | None
    dim: int
    chunking: dict[str, int]
    corpus_dir: str
    corpus_hash: str
    documents: int
    passages: int
    sentences: int
    index_type: str
    library_versions: dict[str, str]
    built_at: str
    build_seconds: float
    format_version: int = FORMAT_VERSION
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    sizes: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    extra: dict[str, Any] = field(default_factory=dict)
    # The dense index's parameters (``qa.index.dense.DenseParams``); empty in a manifest from before they
    # were recorded, whose index is loaded with the parameters of its ``index_type`` then.
    dense: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(
            json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8"
        )

    @classmethod
    def read(cls, folder: Path) -> IndexManifest:
        path = folder / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise IndexCorrupt(f"{path}: unreadable index manifest ({exc}); rebuild with `qa index`") from exc

    def differences(
        self, *, model: str, weights: str | None, chunking: dict[str, int], corpus_hash: str | None
    ) -> list[str]:
        """Human-readable differences between this index and what the current settings would build."""
        out = []
        if self.format_version != FORMAT_VERSION:
            out.append(f"index format {self.format_version} (this version reads {FORMAT_VERSION})")
        if self.model != model:
            out.append(f"model: index built with '{self.model}', settings ask for '{model}'")
        elif weights and self.model_weights_sha256 and weights != self.model_weights_sha256:
            out.append("model weights: the model files changed since the index was built")
        if self.chunking != chunking:
            out.append(f"chunking: index built with {self.chunking}, settings ask for {chunking}")
        built_with = self.extra.get("tokenizer")
        if built_with and built_with != tokenizer_signature():
            out.append("keyword tokenizer: the code tokenizes differently from when the index was built")
        if corpus_hash is not None and corpus_hash != self.corpus_hash:
            out.append(
                "corpus: documents, their metadata or the vocabulary changed since the index was built"
            )
        return out

    def verify_files(self, folder: Path, *, full: bool = False) -> None:
        """Detect a missing, truncated or corrupted index file: every file by its size, and by its checksum
        those up to HASH_ON_LOAD_BYTES (all with ``full``), so loading a big index reads no GBs to check it."""
        for rel, digest in self.files.items():
            path = folder / rel
            if not path.exists():
                raise IndexCorrupt(f"{path}: index file missing; rebuild with `qa index`")
            size = path.stat().st_size
            if rel in self.sizes and size != self.sizes[rel]:
                raise IndexCorrupt(
                    f"{path}: {size} bytes, the build wrote {self.sizes[rel]} (truncated or corrupted); "
                    "rebuild with `qa index`"
                )
            if (full or size <= HASH_ON_LOAD_BYTES or rel not in self.sizes) and file_sha256(path) != digest:
                raise IndexCorrupt(
                    f"{path}: checksum mismatch (corrupted or truncated); rebuild with `qa index`"
                )
