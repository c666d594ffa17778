"""The facts routes: /api/trials (JSON and CSV, filters), /api/trials/{id}, /api/drugs, /api/drugs/{name}."""

from __future__ import annotations

import csv
import io
from typing import Any

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def test_trials_list_and_filters(client: Any) -> None:
    everything = client.get("/api/trials").json()
    assert everything["count"] == len(everything["trials"]) > 40
    tlr9 = client.get("/api/trials", params={"drug_class": "TLR9 agonist", "drug": "pembrolizumab"}).json()
    assert tlr9["count"] == 4
    assert client.get("/api/trials", params={"q": HEADLINE}).json()["count"] == 4
    first = tlr9["trials"][0]
    for key in ("id", "name", "nct_ids", "phase", "interventions", "drug_classes", "targets", "conditions"):
        assert key in first
    for key in (
        "setting",
        "outcomes",
        "quote",
        "passage_id",
        "doc_id",
        "start",
        "end",
        "evidence",
        "source_kind",
    ):
        assert key in first
    nsclc3 = client.get(
        "/api/trials", params={"condition": "non-small-cell lung cancer", "phase": "III"}
    ).json()
    names = {t["name"] for t in nsclc3["trials"]}
    assert {"LEAP-006", "SKYSCRAPER-01", "DUBLIN-3"} <= names and "MRTX-500" not in names
    lag3 = client.get("/api/trials", params={"target": "LAG-3"}).json()
    assert "RELATIVITY-047" in {t["name"] for t in lag3["trials"]}
    assert {t["id"] for t in client.get("/api/trials", params={"drug": "FPA008"}).json()["trials"]} == {
        "NCT02526017",
        "NCT03336216",
    }


def test_trials_csv(client: Any) -> None:
    r = client.get("/api/trials", params={"q": HEADLINE, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 4
    assert all("pembrolizumab" in row["interventions"] for row in rows)
    assert any("ORR 78%" in row["outcomes"] for row in rows)


def test_trial_by_id_name_or_nct(client: Any) -> None:
    by_name = client.get("/api/trials/PIVOT-02").json()
    assert by_name["id"] == "NCT02983045" and by_name["phase"] == "Phase 1/2"
    assert client.get("/api/trials/nct02983045").json()["name"] == "PIVOT-02"
    assert any(o["measure"] == "ORR" and o["detail"] == "22/37" for o in by_name["outcomes"])


def test_unknown_trial_and_bad_filters_use_the_error_shape(client: Any) -> None:
    r = client.get("/api/trials/NCT08099109")  # an OCR misprint in table text: never a trial
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    bad = client.get("/api/trials", params={"drug": "notadrug"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_input"
    assert client.get("/api/trials", params={"phase": "seven"}).status_code == 400
    assert client.get("/api/drugs/notadrug").json()["error"]["status"] == 404


def test_drugs(client: Any) -> None:
    listing = client.get("/api/drugs").json()
    names = {d["name"] for d in listing}
    assert {"vidutolimod", "pembrolizumab", "lifileucel", "bempegaldesleukin"} <= names
    cmp = client.get("/api/drugs/CMP-001").json()
    assert cmp["name"] == "vidutolimod" and "CMP-001" in cmp["aliases"]
    assert "TLR9 agonist" in cmp["classes"] and "TLR9" in cmp["targets"]
    assert "NCT02680184" in cmp["trials"] and cmp["mentions"] >= 3
    assert all(e["quote"] for e in cmp["evidence"])
    unmentioned = client.get("/api/drugs/cemiplimab").json()  # in the vocabulary, not in these papers
    assert unmentioned["trials"] == [] and unmentioned["mentions"] == 0


def test_trials_come_a_page_at_a_time(client: Any) -> None:
    """``offset`` and ``limit`` page through the trials in document order; ``count`` is over all pages."""
    everything = client.get("/api/trials").json()
    ids = [t["id"] for t in everything["trials"]]
    assert everything["offset"] == 0 and everything["limit"] >= len(ids) > 40
    pages = [
        client.get("/api/trials", params={"offset": o, "limit": 7}).json() for o in range(0, len(ids), 7)
    ]
    assert all(p["count"] == len(ids) and p["limit"] == 7 for p in pages)
    assert [t["id"] for p in pages for t in p["trials"]] == ids
    assert client.get("/api/trials", params={"offset": len(ids)}).json()["trials"] == []
    csv_page = client.get("/api/trials", params={"format": "csv", "offset": 3, "limit": 2})
    assert csv_page.headers["x-total-count"] == str(len(ids))
    assert [r["id"] for r in csv.DictReader(io.StringIO(csv_page.text))] == ids[3:5]
    for bad in ({"limit": 0}, {"limit": 10**6}, {"offset": -1}, {"limit": "many"}):
        r = client.get("/api/trials", params=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", bad
