"""Round-2 evaluation over the JSON API: every question in /work/shared/eval/round2 asked through POST /api/ask.

    python bench/eval_round2.py                          # a server already running on http://127.0.0.1:8000
    python bench/eval_round2.py --url http://127.0.0.1:8765 --failures
    python bench/eval_round2.py --in-process --index-dir /tmp/idx   # no server: the app under TestClient

Prints one table (the figures of the issue), writes per-question details to bench/results/eval_round2.json,
and with --failures prints every failing question with what came back. How each file is scored follows the
round-2 README:

- evidence: a passage answers when, after collapsing white space and lower-casing both, it contains any one
  of the question's evidence strings.
- retrieval_*: asked with top_k 10; the rank of the first answering passage gives hit@1, hit@5 and MRR@10
  (overall and by kind). A question "passes" at hit@5; --failures also lists the ones found at rank 2-5.
- trials_*, and chats whose last turn has expected_last: precision/recall/F1 of the returned `trials`
  (see TRIAL MATCHING below); macro-F1 is the mean of the per-question F1.
- values_*: every must_contain string (white space collapsed, case-insensitive) is in the answer text or in
  the returned trials (their label, name, ids, interventions, conditions, outcomes and quote).
- chats_*: the turns are asked in order, each after the first with the conversation_id the first answer
  returned; only the last turn is scored (trial F1, or an evidence string in the top 5 passages).
- abstain: passes when `abstained` is true and `trials` is empty; reported by kind (offtopic/near/unstated).
- answerable_control: passes when not abstained and an evidence string is in the top 5 passages.

Questions other than retrieval ones are asked with the API's default top_k (5), as a user would ask them.

TRIAL MATCHING. Expected entries are written by people, e.g. "PIVOT-02 (NCT02983045): NKTR-214 + nivolumab",
"TACTI-003: eftilagimod alpha + pembrolizumab in ...", "trial of CMP-001 + nivolumab + ipilimumab in
melanoma"; the API returns records {id, name, nct_ids, aliases, label, interventions, ...}. An expected
entry is parsed into its NCT ids, its name (the text before the first " (" or ":", unless the entry starts
with "trial of") and its drugs (after ":" or "trial of", up to " in ", split on "+"). A returned trial
matches an entry, trying in order:
  1. NCT ids: the entry has NCT ids and one of them is among the trial's nct_ids or is its id;
  2. name: the entry's name equals the trial's name, id, label or one of its aliases, compared
     case-insensitively with spaces, hyphens and underscores dropped ("IMpower 150" == "impower-150");
  3. drugs, only when the entry has neither NCT ids nor a name: every drug of the entry is among the trial's
     interventions, both mapped to one canonical name through GET /api/drugs (a code name such as CMP-001
     equals vidutolimod).
Each expected entry is credited once: a second returned trial matching an already matched entry counts as a
false positive (a duplicate row). A returned trial matching an `acceptable` entry is neither rewarded nor
penalised (left out of precision). Precision is 0 when nothing is returned; F1 is 0 when P or R is 0; with
no expected entries, F1 is 1 for an empty list and 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("/work/shared/eval/round2")
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "round2"
DEFAULT_OUT = ROOT / "bench" / "results" / "eval_round2.json"
RETRIEVAL_TOP_K = 10
NCT = re.compile(r"NCT\d{8}", re.IGNORECASE)

Post = Callable[[dict[str, Any]], dict[str, Any]]


# --- matching -----------------------------------------------------------------


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


def key(text: str | None) -> str:
    """A name compared robustly: lower case, no spaces, hyphens or underscores."""
    return re.sub(r"[\s\-_]+", "", (text or "").lower())


def parse_expected(entry: str) -> dict[str, Any]:
    """NCT ids, name and drugs of a human-written trial entry (see TRIAL MATCHING in the module doc)."""
    ncts = [n.upper() for n in NCT.findall(entry)]
    name, drugs_part = None, ""
    stripped = entry.strip()
    if stripped.lower().startswith("trial of "):
        drugs_part = stripped[len("trial of ") :]
    else:
        head = re.split(r"\s*\(|:", stripped, maxsplit=1)[0].strip()
        if head and not NCT.fullmatch(head):
            name = head
        if ":" in stripped:
            drugs_part = stripped.split(":", 1)[1]
    drugs_part = NCT.sub("", re.sub(r"\([^)]*\)", "", drugs_part))
    drugs_part = re.split(r"\s+in\s+", drugs_part, maxsplit=1)[0]
    drugs = [d.strip() for d in drugs_part.split("+") if d.strip()]
    return {"text": entry, "nct_ids": ncts, "name": name, "drugs": drugs}


class TrialMatcher:
    def __init__(self, drugs: list[dict[str, Any]]) -> None:
        self.canonical: dict[str, str] = {}
        for d in drugs:
            for alias in [d.get("name", ""), *d.get("aliases", [])]:
                self.canonical.setdefault(key(alias), key(d.get("name", "")))

    def drug(self, name: str) -> str:
        return self.canonical.get(key(name), key(name))

    def matches(self, expected: dict[str, Any], trial: dict[str, Any]) -> bool:
        if expected["nct_ids"]:
            ids = {n.upper() for n in trial.get("nct_ids") or []} | {str(trial.get("id", "")).upper()}
            if ids & set(expected["nct_ids"]):
                return True
        if expected["name"]:
            names = [trial.get("name"), trial.get("id"), trial.get("label"), *(trial.get("aliases") or [])]
            if key(expected["name"]) in {key(n) for n in names if n}:
                return True
        if not expected["nct_ids"] and not expected["name"] and expected["drugs"]:
            have = {self.drug(i) for i in trial.get("interventions") or []}
            return all(self.drug(d) in have for d in expected["drugs"])
        return False

    def score(
        self, trials: list[dict[str, Any]], expected: list[str], acceptable: list[str]
    ) -> dict[str, Any]:
        exp = [parse_expected(e) for e in expected]
        acc = [parse_expected(a) for a in acceptable]
        matched: set[int] = set()
        verdicts = []
        tp = fp = 0
        for t in trials:
            hit = next((i for i, e in enumerate(exp) if self.matches(e, t)), None)
            if hit is not None and hit not in matched:
                matched.add(hit)
                tp += 1
                verdicts.append("expected")
            elif hit is None and any(self.matches(a, t) for a in acc):
                verdicts.append("acceptable")
            else:
                fp += 1
                verdicts.append("duplicate" if hit is not None else "false positive")
        if not exp:
            p = r = f1 = 1.0 if tp + fp == 0 else 0.0
        else:
            p = tp / (tp + fp) if tp + fp else 0.0
            r = len(matched) / len(exp)
            f1 = 2 * p * r / (p + r) if p and r else 0.0
        return {
            "precision": p,
            "recall": r,
            "f1": f1,
            "verdicts": verdicts,
            "missing": [e["text"] for i, e in enumerate(exp) if i not in matched],
        }


# --- asking -------------------------------------------------------------------


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
        resp: dict[str, Any] = {}
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


# --- figures ------------------------------------------------------------------


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def figures(items: list[dict[str, Any]]) -> list[tuple[str, str, float, int]]:
    """(kind, figure, value, n) rows in the order of the issue's table."""
    rows: list[tuple[str, str, float, int]] = []
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
    return rows


def table(rows: list[tuple[str, str, float, int]]) -> str:
    out = ["| kind | figure | value | n |", "| --- | --- | --- | --- |"]
    out += [f"| {k} | {f} | {v:.3f} | {n} |" for k, f, v, n in rows]
    return "\n".join(out)


# --- failures -----------------------------------------------------------------


def short(text: str | None, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def describe(r: dict[str, Any], indent: str = "    ") -> list[str]:
    if "error" in r:
        return [f"{indent}ERROR {r['error']}"]
    lines = []
    if r.get("resolved_question"):
        lines.append(f"{indent}resolved: {short(r['resolved_question'], 200)}")
    lines.append(f"{indent}abstained={r.get('abstained')} evidence={r.get('evidence')}")
    ps = r.get("passages") or []
    if ps:
        p = ps[0]
        section = short(p["section"].split(" > ")[-1], 50)
        lines.append(f"{indent}top passage [{p['doc_id'][:3]} {section}]: {short(p['text'], 150)}")
    labels = [t["label"] or t["id"] for t in r.get("trials") or []]
    lines.append(f"{indent}trials: {'; '.join(labels) if labels else '(none)'}")
    lines.append(f"{indent}answer: {short(r.get('answer'), 200)}")
    return lines


def failure_lines(items: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for set_name in ("retrieval", "trials", "values", "chats", "abstain", "answerable"):
        group = [
            i
            for i in items
            if i["set"] == set_name
            and (not i["passed"] or (set_name == "retrieval" and i["rank"] != 1) or i.get("cited") is False)
        ]
        if not group:
            continue
        total = sum(i["set"] == set_name for i in items)
        out.append(
            f"\n## {set_name}: {len(group)} of {total} listed (failed, or answer abstained / cites no evidence)"
        )
        for i in group:
            head = f"- {i['id']} [{i['kind']}] {i['question']}"
            if set_name == "retrieval":
                head += f"  -> evidence at rank {i['rank']}" if i["rank"] else "  -> evidence not in top 10"
                if i["passed"] and i["rank"] != 1:
                    head += " (hit@5, not @1)"
            elif "f1" in i:
                head += f"  -> P={i['precision']:.2f} R={i['recall']:.2f} F1={i['f1']:.2f}"
            elif "rank" in i:
                head += f"  -> evidence rank {i['rank']} in top 5"
            if i.get("cited") is False:
                why = "abstained" if i["returned"].get("abstained") else "answer cites no evidence passage"
                head += f"  [{why}]"
            out.append(head)
            exp = i["expected"]
            if "evidence" in exp:
                out.append(f"    wanted evidence: {short(' || '.join(exp['evidence']), 200)}")
            if "f1" in i:
                out.append(f"    missing: {i['missing'] or '-'}")
                verdicts = [
                    f"{t['label'] or t['id']} ({v})"
                    for t, v in zip(i["returned"].get("trials") or [], i["verdicts"], strict=False)
                    if v != "expected"
                ]
                if verdicts:
                    out.append(f"    wrong: {'; '.join(verdicts)}")
            if set_name == "values":
                out.append(f"    missing strings: {i['missing']}")
            if exp.get("why"):
                out.append(f"    why unanswerable: {short(exp['why'], 200)}")
            if set_name == "chats":
                for n, t in enumerate(i["turns"][:-1], start=1):
                    out.append(f"    turn {n}: {short(t['question'], 100)}")
                    out += describe(t, "      ")
                out.append(f"    last turn: {i['question']}")
                out += describe(i["returned"], "      ")
            else:
                out += describe(i["returned"])
    return out


# --- transports ---------------------------------------------------------------


def poster(client: httpx.Client) -> Post:
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


def drugs_of(client: httpx.Client) -> list[dict[str, Any]]:
    r = client.get("/api/drugs")
    return r.json() if r.status_code == 200 else []


@contextmanager
def server_client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60.0) as c:
        yield c


@contextmanager
def in_process_client(index_dir: Path, corpus_dir: Path) -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient

    from qa.api.app import create_app
    from qa.services import Services
    from qa.settings import Settings

    services = Services.start(Settings(corpus_dir=corpus_dir, index_dir=index_dir), build_if_needed=True)
    try:
        with TestClient(create_app(services=services)) as c:
            yield c
    finally:
        services.close()


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "qa"], cwd=ROOT, capture_output=True, text=True
        )
        return rev.strip() + (" (qa/ modified)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="a running server (default %(default)s)")
    ap.add_argument("--in-process", action="store_true", help="build the app in this process (TestClient)")
    ap.add_argument("--index-dir", type=Path, default=ROOT / "index", help="--in-process: index folder")
    ap.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus", help="--in-process: corpus folder")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="round-2 question folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (default %(default)s)")
    ap.add_argument("--failures", action="store_true", help="print failing questions with what came back")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    ctx = in_process_client(args.index_dir, args.corpus_dir) if args.in_process else server_client(args.url)
    with ctx as client:
        items = run(poster(client), drugs_of(client), args.data)
    seconds = time.perf_counter() - started
    rows = figures(items)
    print(table(rows))
    if args.failures:
        print("\n".join(failure_lines(items)))
    result = {
        "commit": git_commit(),
        "target": "in-process" if args.in_process else args.url,
        "data": str(args.data),
        "seconds": round(seconds, 1),
        "figures": [{"kind": k, "figure": f, "value": round(v, 4), "n": n} for k, f, v, n in rows],
        "items": items,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{len(items)} questions in {seconds:.1f}s; details in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
