"""Round-2 dev questions (/work/shared/eval/round2) asked through POST /api/ask, scored by kind.

The target is an httpx-compatible client (a running server's, or FastAPI's TestClient over the app in this
process) or a callable taking the JSON body and returning the JSON answer. How each file is scored follows
the round-2 README:

- evidence: a passage answers when, after collapsing white space and lower-casing both, it contains any one
  of the question's evidence strings.
- retrieval_*: asked with top_k 10; the rank of the first answering passage gives hit@1, hit@5 and MRR@10
  (overall and by kind). A question "passes" at hit@5; --failures also lists the ones found at rank 2-5.
- trials_*, and chats whose last turn has expected_last: precision/recall/F1 of the returned `trials`
  (see qa.evaluation.trial_matching); macro-F1 is the mean of the per-question F1.
- values_*: every must_contain string (white space collapsed, case-insensitive) is in the answer text or in
  the returned trials (their label, name, ids, interventions, conditions, outcomes and quote).
- chats_*: the turns are asked in order, each after the first with the conversation_id the first answer
  returned; only the last turn is scored (trial F1, or an evidence string in the top 5 passages).
- abstain: passes when `abstained` is true and `trials` is empty; reported by kind (offtopic/near/unstated).
- answerable_control: passes when not abstained and an evidence string is in the top 5 passages.

Questions other than retrieval ones are asked with the API's default top_k (5), as a user would ask them.

Trial matching is qa.evaluation.trial_matching's. The answer fields read are `passages`, `sentences`,
`trials`, `abstained`, `answer`, `evidence`, `resolved_question` and `conversation_id`.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from qa.errors import QAError
from qa.evaluation.trial_matching import TrialMatcher

RETRIEVAL_TOP_K = 10

Post = Callable[[dict[str, Any]], dict[str, Any]]
Figure = tuple[str, str, float, int]  # (kind, figure, value, n)


@runtime_checkable
class Client(Protocol):
    """What the scorer needs of an httpx.Client / TestClient."""

    def post(self, url: str, *, json: Any = ...) -> Any: ...

    def get(self, url: str) -> Any: ...


def flat(text: str) -> str:
    """White space collapsed and lower-cased: how evidence strings are compared with passages."""
    return " ".join(str(text).split()).lower()


def evidence_rank(passages: list[dict[str, Any]], evidence: list[str], k: int) -> int | None:
    """1-based rank of the first of the top ``k`` passages holding one of the evidence strings."""
    wanted = [flat(e) for e in evidence]
    for rank, p in enumerate(passages[:k], start=1):
        text = flat(p.get("text", ""))
        if any(w in text for w in wanted):
            return rank
    return None


def trial_text(trials: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for t in trials:
        for f in ("label", "name", "id", "quote", "phase", "status"):
            parts.append(str(t.get(f) or ""))
        for f in ("nct_ids", "aliases", "interventions", "conditions", "setting", "designations"):
            parts.extend(str(x) for x in t.get(f) or [])
        for o in t.get("outcomes") or []:
            parts.append(" ".join(str(v) for v in o.values() if v) if isinstance(o, dict) else str(o))
    return " | ".join(parts)


def cites_evidence(resp: dict[str, Any], evidence: list[str]) -> bool:
    """Whether the answer is given (not abstained) and one of its [n] passages holds an evidence string."""
    if resp.get("abstained") is not False:
        return False
    passages = resp.get("passages", [])
    cited = [
        passages[s["marker"] - 1]
        for s in resp.get("sentences", [])
        if 0 < s.get("marker", 0) <= len(passages)
    ]
    return evidence_rank(cited, evidence, len(cited)) is not None


def summary(resp: dict[str, Any]) -> dict[str, Any]:
    """What came back, as kept in the results file."""
    if "error" in resp:
        return {"error": resp["error"]}
    return {
        "resolved_question": resp.get("resolved_question"),
        "abstained": resp.get("abstained"),
        "evidence": resp.get("evidence"),
        "answer": resp.get("answer", ""),
        "passages": [
            {
                "id": p.get("id"),
                "doc_id": p.get("doc_id"),
                "section": " > ".join(p.get("section") or []),
                "score": p.get("score"),
                "text": p.get("text", "")[:400],
            }
            for p in resp.get("passages", [])
        ],
        "sentences": [
            {"marker": x.get("marker"), "text": x.get("text", "")} for x in resp.get("sentences", [])
        ],
        "trials": [
            {"id": t.get("id"), "label": t.get("label"), "interventions": t.get("interventions")}
            for t in resp.get("trials", [])
        ],
    }


def load(data: Path, pattern: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for path in sorted(data.glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append((path.name, json.loads(line)))
    return rows


def run(post: Post, drugs: list[dict[str, Any]], data: Path) -> list[dict[str, Any]]:
    matcher = TrialMatcher(drugs)
    items: list[dict[str, Any]] = []

    def ask(question: str, conversation_id: str | None = None, top_k: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"question": question}
        if conversation_id:
            body["conversation_id"] = conversation_id
        if top_k:
            body["top_k"] = top_k
        return post(body)

    for file, q in load(data, "retrieval_*.jsonl"):
        resp = ask(q["question"], top_k=RETRIEVAL_TOP_K)
        rank = evidence_rank(resp.get("passages", []), q["evidence"], RETRIEVAL_TOP_K)
        items.append(
            {
                "set": "retrieval",
                "file": file,
                "id": q["id"],
                "kind": q["kind"],
                "question": q["question"],
                "expected": {"evidence": q["evidence"]},
                "rank": rank,
                "cited": cites_evidence(resp, q["evidence"]),
                "passed": rank is not None and rank <= 5,
                "returned": summary(resp),
            }
        )

    for file, q in load(data, "trials_*.jsonl"):
        resp = ask(q["question"])
        s = matcher.score(resp.get("trials", []), q["expected"], q.get("acceptable", []))
        items.append(
            {
                "set": "trials",
                "file": file,
                "id": q["id"],
                "kind": "trial-list",
                "question": q["question"],
                "expected": {"expected": q["expected"], "acceptable": q.get("acceptable", [])},
                **s,
                "passed": s["f1"] == 1.0,
                "returned": summary(resp),
            }
        )

    for file, q in load(data, "values_*.jsonl"):
        resp = ask(q["question"])
        hay = flat(resp.get("answer", "") + " | " + trial_text(resp.get("trials", [])))
        missing = [m for m in q["must_contain"] if flat(m) not in hay]
        items.append(
            {
                "set": "values",
                "file": file,
                "id": q["id"],
                "kind": "value",
                "question": q["question"],
                "expected": {"must_contain": q["must_contain"]},
                "missing": missing,
                "passed": not missing,
                "returned": summary(resp),
            }
        )

    for file, q in load(data, "chats_*.jsonl"):
        conversation_id, turns = None, []
        resp = {}
        for turn in q["turns"]:
            resp = ask(turn, conversation_id)
            conversation_id = conversation_id or resp.get("conversation_id")
            turns.append({"question": turn, **summary(resp)})
        item: dict[str, Any] = {
            "set": "chats",
            "file": file,
            "id": q["id"],
            "question": q["turns"][-1],
            "turns": turns,
            "returned": turns[-1],
        }
        if "expected_last" in q:
            s = matcher.score(resp.get("trials", []), q["expected_last"], q.get("acceptable_last", []))
            item.update(kind="trials", expected={"expected": q["expected_last"]}, **s)
            item["score"], item["passed"] = s["f1"], s["f1"] == 1.0
        else:
            rank = evidence_rank(resp.get("passages", []), q["evidence_last"], 5)
            cited = cites_evidence(resp, q["evidence_last"])
            item.update(kind="evidence", expected={"evidence": q["evidence_last"]}, rank=rank, cited=cited)
            item["score"], item["passed"] = float(rank is not None), rank is not None
        items.append(item)

    for file, q in load(data, "abstain.jsonl"):
        resp = ask(q["question"])
        passed = resp.get("abstained") is True and not resp.get("trials")
        items.append(
            {
                "set": "abstain",
                "file": file,
                "id": q["id"],
                "kind": q["kind"],
                "question": q["question"],
                "expected": {"abstained": True, "why": q.get("why")},
                "passed": passed,
                "returned": summary(resp),
            }
        )

    for file, q in load(data, "answerable_control.jsonl"):
        resp = ask(q["question"])
        rank = evidence_rank(resp.get("passages", []), q["evidence"], 5)
        items.append(
            {
                "set": "answerable",
                "file": file,
                "id": q["id"],
                "kind": q.get("kind", ""),
                "question": q["question"],
                "expected": {"evidence": q["evidence"], "answer": q.get("answer")},
                "rank": rank,
                "cited": cites_evidence(resp, q["evidence"]),
                "passed": resp.get("abstained") is False and rank is not None,
                "returned": summary(resp),
            }
        )
    return items


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def figures(items: list[dict[str, Any]]) -> list[Figure]:
    """(kind, figure, value, n) rows in the order of the issue's table; kinds without questions left out."""
    rows: list[Figure] = []
    ret = [i for i in items if i["set"] == "retrieval"]

    def rank_rows(label: str, group: list[dict[str, Any]]) -> None:
        ranks = [i["rank"] for i in group]
        n = len(ranks)
        rows.append((label, "hit@1", mean([float(r == 1) for r in ranks]), n))
        rows.append((label, "hit@5", mean([float(r is not None and r <= 5) for r in ranks]), n))
        rows.append((label, "MRR@10", mean([1.0 / r if r else 0.0 for r in ranks]), n))

    rank_rows("retrieval (all)", ret)
    para = [i for i in ret if i["kind"] == "paraphrase"]
    rows.append(("retrieval paraphrase", "hit@5", mean([float(i["passed"]) for i in para]), len(para)))
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in ret:
        by_kind[i["kind"]].append(i)
    for kind in sorted(by_kind):
        rank_rows(f"  retrieval {kind}", by_kind[kind])
    tri = [i for i in items if i["set"] == "trials"]
    rows.append(("trial lists", "macro-F1", mean([i["f1"] for i in tri]), len(tri)))
    rows.append(("  trial lists", "macro-precision", mean([i["precision"] for i in tri]), len(tri)))
    rows.append(("  trial lists", "macro-recall", mean([i["recall"] for i in tri]), len(tri)))
    val = [i for i in items if i["set"] == "values"]
    rows.append(("values", "accuracy", mean([float(i["passed"]) for i in val]), len(val)))
    chats = [i for i in items if i["set"] == "chats"]
    rows.append(("follow-ups, last turn", "accuracy", mean([i["score"] for i in chats]), len(chats)))
    for kind, what in (("trials", "F1"), ("evidence", "hit@5")):
        group = [i for i in chats if i["kind"] == kind]
        if group:
            rows.append((f"  follow-ups ({kind})", what, mean([i["score"] for i in group]), len(group)))
    ab = [i for i in items if i["set"] == "abstain"]
    for kind in ("offtopic", "near", "unstated"):
        group = [i for i in ab if i["kind"] == kind]
        rows.append(
            (f"unanswerable {kind}", "abstained", mean([float(i["passed"]) for i in group]), len(group))
        )
    ctl = [i for i in items if i["set"] == "answerable"]
    rows.append(("answerable look-alikes", "answered", mean([float(i["passed"]) for i in ctl]), len(ctl)))
    # Beyond the table: does a user get an answer at all, and does it cite an evidence passage?
    for label, group in (
        ("(extra) retrieval questions", ret),
        ("(extra) evidence follow-ups", chats),
        ("(extra) look-alikes", ctl),
    ):
        group = [i for i in group if "cited" in i]
        answered = [float(i["returned"].get("abstained") is False) for i in group]
        rows.append((label, "answered, not abstained", mean(answered), len(group)))
        rows.append((label, "answer cites evidence", mean([float(i["cited"]) for i in group]), len(group)))
    return [r for r in rows if r[3]]


def poster(client: Client) -> Post:
    """POST /api/ask through ``client``, waiting out 429s; an error answer becomes {"error": ...}."""

    def post(body: dict[str, Any]) -> dict[str, Any]:
        for _attempt in range(5):
            r = client.post("/api/ask", json=body)
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", 1)))
                continue
            break
        try:
            data = r.json()
        except ValueError:
            data = {"error": {"status": r.status_code, "message": r.text[:200]}}
        if r.status_code != 200:
            return {"error": data.get("error", data)}
        return data

    return post


def drugs_of(client: Client) -> list[dict[str, Any]]:
    r = client.get("/api/drugs")
    return r.json() if r.status_code == 200 else []


def evaluate_round2(
    target: Client | Post, data: Path, *, drugs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Every round-2 question in ``data`` asked of ``target``, scored: {"seconds", "figures", "items"}.

    ``target`` is a client (its GET /api/drugs gives the drug names trial entries are matched through) or a
    callable ``post(body) -> answer`` (then ``drugs``, if any, are given here)."""
    data = Path(data)
    if not any(data.glob("*.jsonl")):
        raise QAError(f"{data} holds no round-2 question files (*.jsonl)")
    if isinstance(target, Client):
        post = poster(target)
        drugs = drugs_of(target) if drugs is None else drugs
    else:
        post = target
    started = time.perf_counter()
    items = run(post, drugs or [], data)
    rows = figures(items)
    return {
        "data": str(data),
        "seconds": round(time.perf_counter() - started, 1),
        "figures": [{"kind": k, "figure": f, "value": round(v, 4), "n": n} for k, f, v, n in rows],
        "items": items,
    }
