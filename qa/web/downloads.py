"""CSV and JSON downloads of a trials table, as data: URLs holding exactly the rows shown."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import quote

from qa.api.models import TrialOut

COLUMNS = ["id", "name", "nct_ids", "phase", "interventions", "drug_classes", "conditions", "setting"]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def trials_csv(trials: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*COLUMNS, "outcomes", "doc_id", "start", "end", "quote"])
    for t in trials:
        outcomes = "; ".join(f"{o['measure']} {o['value']}" for o in t.get("outcomes") or [])
        writer.writerow(
            [_cell(t.get(c)) for c in COLUMNS] + [outcomes, t["doc_id"], t["start"], t["end"], t["quote"]]
        )
    return buf.getvalue()


def trial_downloads(shown: list[TrialOut]) -> dict[str, str]:
    """``csv`` and ``json`` data: URLs; empty when there are no trials."""
    if not shown:
        return {}
    trials = [t.model_dump() for t in shown]
    return {
        "csv": "data:text/csv;charset=utf-8," + quote(trials_csv(trials)),
        "json": "data:application/json;charset=utf-8," + quote(json.dumps(trials, ensure_ascii=False)),
    }
