"""The fact store: a build's facts in one SQLite file (facts.sqlite3), read by id, never loaded whole.

Written once per build (:func:`write_facts`, rows in batches) and opened read-only and immutable, one
connection per thread (:class:`qa.index.tables.Store`). The vocabulary and the names of the drugs the
documents mention stay in memory (bounded by the lexicon, not the corpus); trials, drugs, what the documents
taught and the OCR notes are rows. A query reads the rows its terms allow (:mod:`qa.facts.postings`) and
checks each with :func:`qa.facts.query.matches`, so it answers what a scan of every trial would. Builds from
before the store (facts.json) are still read: into a temporary store on load.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.chunking import Passage
from qa.corpus import Corpus
from qa.documents import Document
from qa.errors import IndexCorrupt, NotFound
from qa.facts.build import extract_facts
from qa.facts.model import DrugRecord, FactRecords, Trial
from qa.facts.postings import Need, query_needs, trial_terms
from qa.facts.query import TrialQuery, constraints, expand_query, matches, parse_question
from qa.facts.studies import NCT_RE, name_key
from qa.facts.vocab import Vocabulary
from qa.index.tables import RowTable, Store, batches

log = logging.getLogger(__name__)

FACTS_FILE = "facts.sqlite3"
LEGACY_FACTS_FILE = "facts.json"  # builds before the store: one JSON file, read into a temporary store
VERSION = 2
BATCH = 2000  # rows per executemany while writing, and trials decoded per read while filtering
TRIAL_CACHE = 4096  # decoded trials kept in memory
SQLITE_VARS = 900  # below SQLite's bound on parameters per statement
# Narrowing candidates: costs in posting reads (~0.3 us here): a query ~10 us, an index seek for one row ~3 us,
# decoding and checking a trial ~40 us. Below NARROW_ENOUGH rows left, they are checked as they are.
QUERY_COST = 30
SEEK_COST = 10
CHECK_COST = 130
NARROW_ENOUGH = 32

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (row INTEGER PRIMARY KEY, id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE trial_keys (key TEXT NOT NULL, kind TEXT NOT NULL, row INTEGER NOT NULL, id TEXT NOT NULL);
CREATE TABLE postings (term TEXT NOT NULL, row INTEGER NOT NULL);
CREATE TABLE drugs (row INTEGER PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE documents (row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, trials INTEGER NOT NULL,
    drugs INTEGER NOT NULL, outcomes INTEGER NOT NULL);
CREATE TABLE notes (row INTEGER PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE terms (term TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX trials_id ON trials (id);
CREATE INDEX trial_keys_key ON trial_keys (key, kind, row, id);  -- covering: ids without the trial rows
CREATE INDEX postings_term ON postings (term, row);
CREATE UNIQUE INDEX drugs_name ON drugs (name);
INSERT INTO terms SELECT term, COUNT(*) FROM postings GROUP BY term;
"""


def _keys(trial: Trial) -> list[tuple[str, str]]:
    """(key, kind) of each way a trial is looked up: its id, NCT and other registry ids, names and aliases."""
    keys = [(trial.id.upper(), "id")]
    keys += [(n.upper(), "nct") for n in trial.nct_ids]
    keys += [(r.upper(), "registry") for r in trial.registry_ids]
    keys += [(name_key(n), "name") for n in [trial.name, *trial.aliases] if n]
    return list(dict.fromkeys(keys))


def write_facts(path: Path, records: FactRecords) -> None:
    """File ``records`` at ``path`` (replacing any file there)."""
    write_fact_rows(path, records.vocab, records.trials, records.drugs.values(), records.learned, records.ocr)


def write_fact_rows(
    path: Path,
    vocab: Vocabulary,
    trials: Iterable[Trial],
    drugs: Iterable[DrugRecord],
    learned: Iterable[dict[str, Any]] = (),
    ocr: Iterable[dict[str, Any]] = (),
) -> None:
    """File the rows at ``path`` a batch at a time (trials in document order, drugs by name; the iterables
    are read once), the tables first, their indexes once filled. Memory: a batch, and one count per document."""
    path = Path(path)
    path.unlink(missing_ok=True)
    counts: dict[str, list[int]] = {}  # per document: trials (by primary evidence), drugs, outcomes
    db = sqlite3.connect(path)
    try:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        meta = {"version": str(VERSION), "vocabulary": json.dumps(vocab.to_dict(), ensure_ascii=False)}
        db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        for batch in batches(enumerate(trials), BATCH):
            db.executemany(
                "INSERT INTO trials VALUES (?, ?, ?)",
                [(i, t.id, json.dumps(t.to_dict(), ensure_ascii=False)) for i, t in batch],
            )
            db.executemany(
                "INSERT INTO trial_keys VALUES (?, ?, ?, ?)",
                [(k, kind, i, t.id) for i, t in batch for k, kind in _keys(t)],
            )
            db.executemany(
                "INSERT INTO postings VALUES (?, ?)",
                [(term, i) for i, t in batch for term in sorted(trial_terms(vocab, t))],
            )
            for _i, t in batch:
                row = counts.setdefault(t.primary.doc_id, [0, 0, 0])
                row[0] += 1
                row[2] += len(t.outcomes)
        for batch in batches(enumerate(drugs), BATCH):
            db.executemany(
                "INSERT INTO drugs VALUES (?, ?, ?)",
                [(i, d.name, json.dumps(d.to_dict(), ensure_ascii=False)) for i, d in batch],
            )
            for _i, d in batch:
                # in evidence order (a set's changed with the string hashes, and the rows with it)
                for doc_id in dict.fromkeys(e.doc_id for e in d.evidence):
                    counts.setdefault(doc_id, [0, 0, 0])[1] += 1
        rows = [(i, doc_id, *c) for i, (doc_id, c) in enumerate(counts.items())]
        db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", rows)
        notes = [("learned", n) for n in learned] + [("ocr", n) for n in ocr]
        for batch in batches(enumerate(notes), BATCH):
            db.executemany(
                "INSERT INTO notes VALUES (?, ?, ?)",
                [(i, kind, json.dumps(n, ensure_ascii=False)) for i, (kind, n) in batch],
            )
        db.executescript(_INDEXES)
        db.commit()
    finally:
        db.close()


def _trial(data: str) -> Trial:
    return Trial.from_dict(json.loads(data))


class Trials(RowTable[Trial]):
    """Every trial by row, in document order; iteration streams them (for tests and exports, not queries)."""

    table = "trials"

    def _read(self, row: int) -> Trial | None:
        found = self.store.execute("SELECT data FROM trials WHERE row = ?", (row,))
        return _trial(found[0][0]) if found else None

    def __iter__(self) -> Iterator[Trial]:
        return (_trial(d) for (d,) in self.store.iterate("SELECT data FROM trials ORDER BY row"))


class FactStore:
    """A build's facts, read from its ``facts.sqlite3`` (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = Store(self.path, "trials")
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if int(meta.get("version", 0)) != VERSION:
                raise IndexCorrupt(
                    f"{self.path}: fact store version {meta.get('version')}, expected {VERSION}"
                )
            self.vocab = Vocabulary(json.loads(meta["vocabulary"]))
            self.drug_names = {name for (name,) in self._db.execute("SELECT name FROM drugs")}
            for table in ("terms", "postings", "trial_keys", "documents", "notes"):
                self._db.execute(f"SELECT 1 FROM {table} LIMIT 1")  # every table there, or a clear error now
            self.trials = Trials(self._db)
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise IndexCorrupt(
                f"{self.path}: not a readable fact store ({exc}); rebuild with `qa index`"
            ) from exc
        self._cache: OrderedDict[int, Trial] = OrderedDict()
        self._lock = threading.Lock()

    # --- opening -----------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> FactStore:
        """The store at ``path``: a facts.sqlite3, or an older build's facts.json (read into a temporary one)."""
        path = Path(path)
        if path.suffix == ".json":
            return cls.from_records(FactRecords.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        return cls(path)

    @classmethod
    def from_records(cls, records: FactRecords, path: Path | None = None) -> FactStore:
        """``records`` filed at ``path``, or in a temporary folder removed with the store."""
        if path is not None:
            write_facts(path, records)
            return cls(path)
        folder = Path(tempfile.mkdtemp(prefix="qa-facts-"))
        write_facts(folder / FACTS_FILE, records)
        store = cls(folder / FACTS_FILE)
        weakref.finalize(store, shutil.rmtree, folder, True)
        return store

    @classmethod
    def for_index(cls, folder: Path, documents: Iterable[Document], passages: Iterable[Passage]) -> FactStore:
        """The store saved with an index; for an older build, its facts.json, or without either the facts
        extracted now into a temporary store."""
        folder = Path(folder)
        for name in (FACTS_FILE, LEGACY_FACTS_FILE):
            if (folder / name).exists():
                return cls.load(folder / name)
        log.warning("%s has no %s; extracting facts into a temporary store", folder, FACTS_FILE)
        return build_facts(list(documents), list(passages), Vocabulary.load())

    # --- rows ----------------------------------------------------------------
    def _rows_of(self, rows: Iterable[int]) -> Iterator[tuple[int, Trial]]:
        """(row, trial) for ``rows`` (ascending), decoded a batch at a time behind a small cache."""
        for batch in batches(rows, SQLITE_VARS):
            with self._lock:
                got = {r: self._cache[r] for r in batch if r in self._cache}
                for r in got:
                    self._cache.move_to_end(r)
            missing = [r for r in batch if r not in got]
            if missing:
                marks = ",".join("?" * len(missing))
                for r, data in self._db.execute(
                    f"SELECT row, data FROM trials WHERE row IN ({marks})", missing
                ):
                    got[r] = _trial(data)
                with self._lock:
                    for r in missing:
                        self._cache[r] = got[r]
                    while len(self._cache) > TRIAL_CACHE:
                        self._cache.popitem(last=False)
            for r in batch:
                yield r, got[r]

    def _posting(self, term: str, within: set[int] | None = None) -> set[int]:
        """The rows filed under ``term`` (with ``within``: those of them among ``within``, by index seeks)."""
        if within is None:
            return {r for (r,) in self._db.execute("SELECT row FROM postings WHERE term = ?", (term,))}
        out: set[int] = set()
        for batch in batches(sorted(within), SQLITE_VARS):
            marks = ",".join("?" * len(batch))
            sql = f"SELECT row FROM postings WHERE term = ? AND row IN ({marks})"
            out.update(r for (r,) in self._db.execute(sql, (term, *batch)))
        return out

    def _sizes(self, terms: Iterable[str]) -> dict[str, int]:
        """Rows per term; an ``id:`` term is one trial's (not looked up: a name can stand for thousands)."""
        wanted = dict.fromkeys(terms)
        out = {t: 1 for t in wanted if t.startswith("id:")}
        for batch in batches([t for t in wanted if t not in out], SQLITE_VARS):
            marks = ",".join("?" * len(batch))
            out.update(self._db.execute(f"SELECT term, n FROM terms WHERE term IN ({marks})", batch))
        return out

    def _candidates(self, needs: list[Need]) -> Iterable[int]:
        """Rows that may meet every need (ascending), a superset of those that do; with no needs, every row.

        The cheapest need (by its terms' posting counts) is read whole; each other one, cheapest first,
        narrows the rows found by whichever costs least: its postings read whole, or looked up for the rows
        found, or none (the rows are few enough to decode and check)."""
        if not needs:
            return range(len(self.trials))
        sizes = self._sizes(t for need in needs for alt in need for t in alt)
        whole = [
            sum(min(sizes.get(t, 0) for t in alt) + QUERY_COST * len(alt) for alt in need) for need in needs
        ]
        found: set[int] | None = None
        for cost, need in sorted(zip(whole, needs, strict=True), key=lambda x: x[0]):
            within = None
            if found is not None:
                if len(found) <= NARROW_ENOUGH:
                    break
                terms = sum(len(alt) for alt in need)
                seek = SEEK_COST * terms * len(found)
                if min(cost, seek) > CHECK_COST * len(found):
                    continue
                within = found if seek < cost else None
            rows: set[int] = set()
            for alternative in need:
                both = within
                for term in sorted(alternative, key=lambda t: sizes.get(t, 0)):
                    hit = self._posting(term, both) if sizes.get(term) else set()
                    both = hit if both is None else both & hit
                    if not both:
                        break
                rows |= both or set()
            found = rows if found is None else found & rows
            if not found:
                return []
        return sorted(found or ())

    def _key_rows(self, key: str, kinds: tuple[str, ...], limit: int = -1) -> list[tuple[int, str]]:
        """(row, id) of the trials filed under ``key`` as one of ``kinds``, by row."""
        marks = ",".join("?" * len(kinds))
        sql = f"SELECT DISTINCT row, id FROM trial_keys WHERE key = ? AND kind IN ({marks}) ORDER BY row LIMIT ?"
        return [(r, i) for r, i in self._db.execute(sql, (key, *kinds, limit))]

    # --- lookups -----------------------------------------------------------
    def trial(self, key: str) -> Trial:
        """A trial by id, NCT id or name ('PIVOT-02', 'pivot02', 'NCT02983045')."""
        every = ("id", "nct", "registry", "name")
        rows = self._key_rows(key.upper(), every, 1) or self._key_rows(name_key(key), every, 1)
        if not rows:
            raise NotFound(f"no trial with id or name '{key}'")
        return next(self._rows_of([rows[0][0]]))[1]

    def named_trials(self, question: str) -> list[str]:
        """Ids of the trials a question names, by NCT id or by name."""
        found = [i for n in NCT_RE.findall(question) for _r, i in self._key_rows(n, ("nct",))]
        for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\s\d+)?", question):
            key = name_key(token)
            if len(key) >= 4:
                found.extend(i for _r, i in self._key_rows(key, ("name",)))
        return list(dict.fromkeys(found))

    def drug(self, name: str) -> DrugRecord:
        """A drug by any of its names; vocabulary drugs the documents never mention have no trials."""
        canonical = self.vocab.resolve(name, "drug")
        if canonical is None:
            raise NotFound(f"no drug named '{name}' in the vocabulary or the documents")
        found = self._db.execute("SELECT data FROM drugs WHERE name = ?", (canonical,))
        if found:
            return DrugRecord.from_dict(json.loads(found[0][0]))
        info = self.vocab.drugs[canonical]
        return DrugRecord(
            info.name,
            list(info.aliases),
            self.vocab.drug_classes(info.name),
            self.vocab.drug_targets(info.name),
            source=info.source,
        )

    def drugs(self) -> Iterator[DrugRecord]:
        """The drugs the documents mention, by name, streamed."""
        for (data,) in self._db.iterate("SELECT data FROM drugs ORDER BY row"):
            yield DrugRecord.from_dict(json.loads(data))

    @property
    def learned(self) -> list[dict[str, Any]]:
        """What the documents taught the vocabulary, each with its quote."""
        return self._notes("learned")

    @property
    def ocr(self) -> list[dict[str, Any]]:
        """OCR'd table text reconciled with the body."""
        return self._notes("ocr")

    def _notes(self, kind: str) -> list[dict[str, Any]]:
        return [
            json.loads(d)
            for (d,) in self._db.execute("SELECT data FROM notes WHERE kind = ? ORDER BY row", (kind,))
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per document: trials (by primary evidence), drugs mentioned and outcomes extracted."""
        rows = self._db.execute("SELECT doc_id, trials, drugs, outcomes FROM documents ORDER BY row")
        return {d: {"trials": t, "drugs": n, "outcomes": o} for d, t, n, o in rows}

    # --- questions -----------------------------------------------------------
    def expand_query(self, question: str) -> list[str]:
        """Retrieval terms for ``question``, limited to drugs these documents mention."""
        return expand_query(self.vocab, question, present=self.drug_names)

    def answer_trials(self, question: str) -> list[Trial] | None:
        """The trials a question asks about, in document order; None when the question is not about trials."""
        query = parse_question(self.vocab, question, self)
        return None if query is None else self.filter_trials(query)

    def filter_trials(self, query: TrialQuery, *, documents: Collection[str] | None = None) -> list[Trial]:
        """The trials meeting ``query``, in document order; with ``documents``, those the documents describe
        (see :func:`within_documents`)."""
        return self.page_trials(query, documents=documents)[1]

    def page_trials(
        self,
        query: TrialQuery,
        *,
        documents: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[Trial]]:
        """How many trials meet ``query`` and the ``limit`` of them from ``offset`` on, in document order
        (memory: the page, whatever the count)."""
        rows = self._candidates(query_needs(self.vocab, query, documents))
        end = None if limit is None else offset + limit
        total, page = 0, []
        named = set(query.trials)  # checked here as a set (a trial many papers describe: thousands of ids)
        rest = replace(query, trials=[])
        wanted = set(documents or ())
        for _r, t in self._rows_of(rows):  # candidates are a superset: each is checked in full
            if (not named or t.id in named) and _describes(t, wanted) and matches(self.vocab, t, rest):
                if total >= offset and (end is None or total < end):
                    page.append(t)
                total += 1
        return total, within_documents(page, documents) if documents else page

    def nearest_trials(
        self, query: TrialQuery, k: int = 3, *, documents: Collection[str] | None = None
    ) -> list[Trial]:
        """The ``k`` trials meeting most of ``query``'s constraints (at least one, not all), best first: for
        an honest negative. With ``documents``, among the trials those documents describe."""
        parts = constraints(query)
        if len(parts) < 2:
            return []
        allowed = query_needs(self.vocab, TrialQuery(), documents)
        rows_per_part = [set(self._candidates(query_needs(self.vocab, p) + allowed)) for p in parts]
        scored = []
        wanted = set(documents or ())
        for row, t in self._rows_of(sorted(set().union(*rows_per_part))):
            if not _describes(t, wanted):
                continue
            met = sum(
                row in rows and matches(self.vocab, t, p)
                for p, rows in zip(parts, rows_per_part, strict=True)
            )
            if 0 < met < len(parts):
                scored.append((-met, row, t))
        best = [t for _m, _r, t in sorted(scored, key=lambda s: s[:2])[:k]]
        return within_documents(best, documents) if documents else best

    # --- export ------------------------------------------------------------
    def records(self) -> FactRecords:
        """Everything in the store, in memory (for tests and exports; a server never calls it)."""
        drugs = {d.name: d for d in self.drugs()}
        return FactRecords(self.vocab, list(self.trials), drugs, self.learned, self.ocr)

    def to_dict(self) -> dict[str, Any]:
        """Everything in the store in the JSON form of older builds' facts.json."""
        return self.records().to_dict()


def _describes(trial: Trial, documents: set[str]) -> bool:
    """Whether one of ``documents`` describes ``trial`` (no documents: any)."""
    return not documents or any(e.doc_id in documents for e in trial.evidence)


def within_documents(trials: list[Trial], documents: Collection[str]) -> list[Trial]:
    """The trials that ``documents`` describe, each as they state it: a record merged from several papers
    keeps only those documents' evidence, so its quote and passage come from them (its fields stay the
    merged record's)."""
    wanted = set(documents)
    out = []
    for t in trials:
        evidence = [e for e in t.evidence if e.doc_id in wanted]
        if evidence:
            out.append(t if len(evidence) == len(t.evidence) else replace(t, evidence=evidence))
    return out


def build_facts(
    documents: list[Document], passages: Sequence[Passage], base: Vocabulary, path: Path | None = None
) -> FactStore:
    """The facts of ``documents`` (see :func:`qa.facts.build.extract_facts`), filed at ``path`` or in a
    temporary store."""
    return FactStore.from_records(extract_facts(documents, passages, base), path)


def facts_build_step(build_folder: Path, corpus: Corpus, passages: Sequence[Passage]) -> None:
    """Index-build step: file the facts beside the passages (the corpus's own vocabulary.json if any)."""
    records = extract_facts(corpus.documents, passages, Vocabulary.for_corpus(corpus.root))
    write_facts(build_folder / FACTS_FILE, records)
