"""Dense vector index over normalized embeddings, chosen by size: exact (flat) up to ``dense_exact_max``
passages, HNSW over 8-bit scalar-quantized vectors above. IVF, an explicit choice, keeps its 8-bit codes
in inverted lists on disk, built a shard at a time and mapped when served: the index for corpora whose
HNSW graph and codes would not fit in one machine's memory (~65 GB at 10^8 passages).

An index's parameters (``DenseParams``) are recorded in the manifest and used again when it is loaded.
Loading memory-maps the index file where FAISS can (``IO_FLAG_MMAP_IFC``: the flat and scalar-quantized
codes are read in place from the page cache, not copied into the process), so a served index costs its
graph in RAM and the pages of codes that searches touch.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["flat", "hnsw", "ivf"]


class Rows(Protocol):
    """Vectors as rows: an array, or a file of them read a slice at a time (``qa.index.tables.RowFile``)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, rows: Any) -> Any: ...


KINDS: tuple[Kind, ...] = ("flat", "hnsw", "ivf")
# An approximate index searched within a set of rows misses some of the set's best rows (a graph walk or the
# probed lists find too few of them), so a set up to this size is scored exactly from its stored vectors.
EXACT_ROWS = 50_000
# Vectors added to an index at a time while building (float32 copies of this many rows, not of every row).
ADD_BATCH = 50_000
IVF_POINTS_PER_LIST = 40  # training vectors per IVF list (FAISS warns below 39)
IVF_SHARD = 250_000  # vectors encoded at a time into an on-disk IVF index (8-bit codes: ~100 MB)
# Read-only memory mapping of in-memory codes (FAISS >= 1.11); older FAISS only maps IVF lists.
_MMAP_FLAGS = [f for f in ("IO_FLAG_MMAP_IFC", "IO_FLAG_MMAP") if hasattr(faiss, f)]


@dataclass(frozen=True)
class DenseParams:
    """How a dense index was built and is searched; the manifest's ``dense`` record."""

    kind: Kind = "flat"
    quantizer: str = "none"  # "sq8": 8-bit scalar quantizer (one byte per dimension), "none": float32
    hnsw_m: int = 32  # graph neighbours per node (twice that on the bottom layer)
    ef_construction: int = 80  # candidate list while inserting
    ef_search: int = 128  # candidate list while searching (>= k)
    train_sample: int = 0  # vectors the quantizer was trained on (0: no training)
    nlist: int = 0  # IVF lists
    nprobe: int = 0  # IVF lists probed per search
    on_disk: bool = False  # IVF lists in a file of their own beside the index (``<index>.ivfdata``), mapped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, kind: str) -> DenseParams:
        """The record of a manifest; an old manifest (none recorded) gets the parameters its kind had then."""
        if not data:
            return cls(kind=kind, ef_search=128) if kind != "flat" else cls()  # type: ignore[arg-type]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def choose_kind(n: int, requested: str, exact_max: int, ivf_min: int | None = None) -> Kind:
    """``requested`` unless it is "auto": exact up to ``exact_max`` vectors, HNSW-SQ8 above, and IVF-SQ8
    with its lists on disk from ``ivf_min`` (where HNSW's graph, built and held whole, would not fit)."""
    if requested != "auto":
        if requested not in KINDS:
            raise ValueError(f"unknown index type {requested!r}")
        return requested
    if n <= exact_max:
        return "flat"
    return "ivf" if ivf_min is not None and n >= ivf_min else "hnsw"


@contextmanager
def build_threads() -> Iterator[None]:
    """FAISS's OpenMP threads on every core of this process for a build (a serving process runs its
    searches on one), set back afterwards."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class DenseIndex:
    """Inner-product search over L2-normalized vectors (= cosine); one interface for every FAISS type."""

    def __init__(self, index: faiss.Index, params: DenseParams, *, mapped: bool = False) -> None:
        self.index = index
        self.params = params
        self.mapped = mapped  # codes read in place from the file (memory-mapped)
        self._scratch: weakref.finalize | None = None  # removes the folder a new IVF index was built in

    @property
    def kind(self) -> Kind:
        return self.params.kind

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def exact_vectors(self) -> bool:
        """Whether ``vectors()`` gives back the vectors as built (not a quantized approximation)."""
        return self.params.quantizer == "none"

    @classmethod
    def build(
        cls,
        vectors: Rows,
        kind: Kind = "flat",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        train_sample: int = 100_000,
        quantizer: str = "sq8",
        seed: int = 0,
        scratch: Path | None = None,
    ) -> DenseIndex:
        """An index of ``vectors`` (float rows; built from the float vectors, never from another index's
        quantized ones). ``quantizer`` ("sq8" or "none") applies to HNSW and IVF; the scalar quantizer is
        trained on a random sample of ``train_sample`` rows (its per-dimension ranges). An IVF index is
        built into lists on disk in a folder under ``scratch`` (the system's temporary folder if None; give
        one on the index's disk: ``save`` moves the lists file beside the index)."""
        with build_threads():
            return cls._build(
                vectors, kind, hnsw_m, ef_construction, ef_search, train_sample, quantizer, seed, scratch
            )

    @classmethod
    def _build(
        cls,
        vectors: Rows,
        kind: Kind,
        hnsw_m: int,
        ef_construction: int,
        ef_search: int,
        train_sample: int,
        quantizer: str,
        seed: int,
        scratch: Path | None,
    ) -> DenseIndex:
        n, dim = vectors.shape
        index: faiss.Index
        params: DenseParams
        started = time.perf_counter()
        if kind == "flat":
            index, params = faiss.IndexFlatIP(dim), DenseParams()
        elif kind == "hnsw":
            if quantizer == "sq8":
                index = faiss.IndexHNSWSQ(
                    dim,
                    faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]
                    hnsw_m,
                    faiss.METRIC_INNER_PRODUCT,
                )
            elif quantizer == "none":
                index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            else:
                raise ValueError(f"unknown quantizer {quantizer!r}")
            index.hnsw.efConstruction = ef_construction
            sample = _sample(vectors, train_sample, seed) if quantizer != "none" else vectors[:0]
            if len(sample):
                index.train(sample)
            params = DenseParams("hnsw", quantizer, hnsw_m, ef_construction, ef_search, len(sample))
        elif kind == "ivf":
            nlist = max(1, int(4 * math.sqrt(n)))
            if quantizer == "sq8":
                index = faiss.IndexIVFScalarQuantizer(
                    faiss.IndexFlatIP(dim),
                    dim,
                    nlist,
                    faiss.ScalarQuantizer.QT_8bit,
                    faiss.METRIC_INNER_PRODUCT,
                )
            elif quantizer == "none":
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                raise ValueError(f"unknown quantizer {quantizer!r}")
            sample = _mapped_sample(vectors, max(train_sample, IVF_POINTS_PER_LIST * nlist), seed, scratch)
            index.train(sample)
            params = DenseParams(
                "ivf",
                quantizer,
                train_sample=len(sample),
                nlist=nlist,
                nprobe=max(16, nlist // 16),
                on_disk=True,
            )
            del sample
            built = cls(_ivf_on_disk(index, vectors, scratch), params)
            folder = Path(
                _on_disk_lists(built.index).filename
            ).parent  # removed once saved, or unsaved and gone
            built._scratch = weakref.finalize(built, shutil.rmtree, folder, ignore_errors=True)
            log.info("dense ivf index of %d vectors built in %.1f s", n, time.perf_counter() - started)
            built.tune()
            return built
        else:
            raise ValueError(f"unknown index type {kind!r}")
        for at in range(0, n, ADD_BATCH):  # a batch at a time: ``vectors`` may be rows on disk (RowFile)
            index.add(np.ascontiguousarray(vectors[at : at + ADD_BATCH], dtype=np.float32))
        log.info("dense %s index of %d vectors built in %.1f s", kind, n, time.perf_counter() - started)
        built = cls(index, params)
        built.tune()
        return built

    def tune(self) -> None:
        """Search-time accuracy knobs of the approximate types (set again after loading)."""
        if self.kind == "hnsw":
            faiss.downcast_index(self.index).hnsw.efSearch = self.params.ef_search  # type: ignore[attr-defined]
        elif self.kind == "ivf":
            ivf = faiss.extract_index_ivf(self.index)
            ivf.nprobe = self.params.nprobe or max(16, ivf.nlist // 16)
            ivf.make_direct_map()  # lets reconstruct() fetch a stored vector by row

    def search(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, best first; ids are -1 where fewer than k vectors exist.

        With ``rows`` only those rows are searched (a document filter): through a FAISS ID selector, which
        is exact on a flat index and on a large set; a smaller set under an approximate index is scored
        exactly from its stored vectors (for HNSW-SQ8 the 8-bit vectors: exact over them, their scores
        within about 0.01 of the float ones).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if rows is None:
            k = max(1, min(k, self.size)) if self.size else 1
            if self.kind == "hnsw" and k > self.params.ef_search:  # the candidate list holds at least k
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = k
                return self.index.search(queries, k, params=params)
            return self.index.search(queries, k)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        k = max(1, min(k, len(rows)))
        if self.kind != "flat" and len(rows) <= EXACT_ROWS:
            return _exact(queries, self.vectors(rows), rows, k)
        return self._search_selected(queries, k, rows)

    def _search_selected(
        self, queries: np.ndarray, k: int, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search admitting only ``rows``, with this index type's accuracy knobs (parameters passed to
        a search replace the index's own). The selector is held here until the search returns."""
        selector = faiss.IDSelectorBatch(rows)
        params: faiss.SearchParameters
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = max(self.params.ef_search, 8 * k)  # type: ignore[attr-defined]
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = faiss.extract_index_ivf(self.index).nprobe
        else:
            params = faiss.SearchParameters()
        params.sel = selector
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows`` (one call, not one per row); decoded, so approximate under SQ8
        (``exact_vectors``): fine to score a few rows, never to build another index from."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        return np.asarray(self.index.reconstruct_batch(rows), dtype=np.float32).reshape(len(rows), self.dim)

    def save(self, path: Path) -> dict[str, Any]:
        """Write the index; its parameters for the manifest's ``dense`` record. On-disk IVF lists move to
        ``<path>.ivfdata`` (the index file names them; loading looks beside the index)."""
        lists = _on_disk_lists(self.index)
        if lists is not None:
            target = lists_path(path)
            if Path(lists.filename) != target:
                os.replace(lists.filename, target)  # this index's map stays valid: the same file, renamed
                lists.filename = str(target)
            if self._scratch is not None:  # the folder the lists were built in, now empty
                self._scratch()
        faiss.write_index(self.index, str(path))
        return self.params.to_dict()

    @classmethod
    def load(
        cls, path: Path, kind: str, params: dict[str, Any] | None = None, *, mmap: bool = True
    ) -> DenseIndex:
        """The index at ``path`` with the manifest's ``kind`` and ``params`` (its ``dense`` record; an old
        manifest has none), memory-mapped where this FAISS can map the type, read into RAM otherwise."""
        record = DenseParams.from_dict(params, kind)
        index, mapped = _read_on_disk(path) if record.on_disk else _read(path, mmap)
        loaded = cls(index, record, mapped=mapped)
        loaded.tune()
        return loaded


def _read(path: Path, mmap: bool) -> tuple[faiss.Index, bool]:
    for flag in _MMAP_FLAGS if mmap else []:
        try:
            return faiss.read_index(str(path), getattr(faiss, flag) | faiss.IO_FLAG_READ_ONLY), True
        except RuntimeError as exc:  # this FAISS cannot map this index type
            log.debug("%s: %s not supported (%s)", path, flag, exc)
    return faiss.read_index(str(path)), False


def lists_path(index_path: Path) -> Path:
    """Where an on-disk IVF index's lists are kept: beside the index file."""
    return index_path.with_name(index_path.name + ".ivfdata")


def _on_disk_lists(index: faiss.Index) -> Any:
    """The index's OnDiskInvertedLists, or None (not IVF, or lists in memory)."""
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
    lists = faiss.downcast_InvertedLists(ivf.invlists)  # type: ignore[arg-type]
    return lists if isinstance(lists, faiss.OnDiskInvertedLists) else None


def _ivf_on_disk(trained: faiss.Index, vectors: Rows, scratch: Path | None) -> faiss.Index:
    """``trained`` (an empty trained IVF index) holding ``vectors``, its lists in one file on disk.

    Vectors are encoded into shards of ``IVF_SHARD`` rows (a shard's codes in memory, written out), and the
    shards' lists merged into one file (FAISS ``OnDiskInvertedLists``, as faiss.contrib.ondisk does): the
    build holds a shard's codes and the coarse quantizer, never every vector's codes (at 10^8 passages and
    8-bit codes, 38 GB)."""
    folder = Path(tempfile.mkdtemp(prefix=".ivf-", dir=scratch))
    shards: list[str] = []
    try:
        n = len(vectors)
        for first in range(0, n, IVF_SHARD):
            shard = faiss.clone_index(trained)
            for at in range(first, min(n, first + IVF_SHARD), ADD_BATCH):
                batch = np.ascontiguousarray(
                    vectors[at : min(n, first + IVF_SHARD, at + ADD_BATCH)], dtype=np.float32
                )
                shard.add_with_ids(batch, np.arange(at, at + len(batch), dtype=np.int64))
            shards.append(str(folder / f"shard-{len(shards):05d}.faiss"))
            faiss.write_index(shard, shards[-1])
            del shard
        ivf = faiss.extract_index_ivf(trained)
        lists = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(folder / "lists.ivfdata"))
        opened = [faiss.read_index(f, faiss.IO_FLAG_MMAP) for f in shards]  # mapped: not read into memory
        parts = faiss.InvertedListsPtrVector()  # type: ignore[attr-defined]
        for shard in opened:
            parts.push_back(faiss.extract_index_ivf(shard).invlists)
        total = lists.merge_from_multiple(parts.data(), parts.size(), False, False)
        del parts, opened
        trained.ntotal = ivf.ntotal = total
        ivf.replace_invlists(lists, True)
        lists.this.disown()  # type: ignore[attr-defined]  # the index owns it now
        return trained
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        for f in shards:
            Path(f).unlink(missing_ok=True)


def _read_on_disk(path: Path) -> tuple[faiss.Index, bool]:
    """An on-disk IVF index, its lists file mapped from beside it (the build folder may have been renamed)."""
    if not lists_path(path).is_file():
        raise FileNotFoundError(f"{lists_path(path)}: the IVF lists of {path} are missing")
    return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY), True


def _sample(vectors: Rows, size: int, seed: int) -> np.ndarray:
    """``size`` rows of ``vectors`` at random, in order (every row if there are no more), as float32."""
    if size <= 0 or size >= len(vectors):
        return np.ascontiguousarray(vectors[:], dtype=np.float32)
    return np.ascontiguousarray(vectors[_sample_rows(len(vectors), size, seed)], dtype=np.float32)


def _mapped_sample(vectors: Rows, size: int, seed: int, scratch: Path | None) -> np.ndarray:
    """``_sample``'s rows (the same ones), written ``ADD_BATCH`` at a time into an unnamed scratch file in
    ``scratch`` and mapped read-only: FAISS trains on pages of the file cache, not on a copy in the heap
    (an IVF index trains on 40 vectors a list: ~2.4 GB of float32 at 10^8 vectors, as the square root of
    the corpus). A full disk fails the write with an ``OSError`` (a mapped write would be a SIGBUS)."""
    if size <= 0 or size >= len(vectors):
        return _sample(vectors, size, seed)
    rows = _sample_rows(len(vectors), size, seed)
    with tempfile.TemporaryFile(dir=scratch, prefix=".train-") as fh:
        for at in range(0, size, ADD_BATCH):
            fh.write(np.ascontiguousarray(vectors[rows[at : at + ADD_BATCH]], dtype=np.float32).data)
        fh.flush()
        # (the map keeps the unnamed file until it goes)
        return np.memmap(fh, dtype=np.float32, mode="r", shape=(size, vectors.shape[1]))


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _exact(
    queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``rows`` for each query by inner product, best first (ties in row order)."""
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), rows[order]
