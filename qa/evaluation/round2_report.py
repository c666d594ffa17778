"""Round-2 results as text: the figures table and the failing questions with what came back."""

from __future__ import annotations

from typing import Any

from qa.evaluation.round2 import Figure


def table(rows: list[Figure]) -> str:
    out = ["| kind | figure | value | n |", "| --- | --- | --- | --- |"]
    out += [f"| {k} | {f} | {v:.3f} | {n} |" for k, f, v, n in rows]
    return "\n".join(out)


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
