"""Replicas: two real `qa serve` processes on one index folder and one PostgreSQL, as behind a load balancer;
a conversation goes on from one to the other, each follow-up read against the turn the other replica
answered, and every turn is stored once."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import qa_serve
from postgres_server import PostgresServer

from qa.conversations.postgres import PostgresConversationStore
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = [
    json.loads(line) for line in (ROOT / "tests" / "data" / "followups.jsonl").read_text().splitlines()
]
# The longest conversation of narrowing follow-ups: each turn is read within the trials of the one before.
NARROWING = max((c for c in CONVERSATIONS if c["move"] == "narrow"), key=lambda c: len(c["turns"]))


@pytest.mark.slow
def test_a_conversation_goes_on_across_two_replicas(
    postgres: PostgresServer, settings: Settings, built_index: Path, tmp_path: Path
) -> None:
    database = postgres.new_database()
    env = {k: v for k, v in os.environ.items() if k != "QA_SERVE_SETTINGS"}
    env.update(
        QA_INDEX_DIR=str(settings.index_dir),  # one read-only build, shared
        QA_CORPUS_DIR=str(settings.corpus_dir),
        QA_DATABASE_URL=database,  # one conversation store, shared
        QA_MODEL_PROCESS="false",  # one process per replica: two fit the machine beside the test session
        QA_TORCH_THREADS="1",
        QA_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    with ExitStack() as stack:
        urls = [stack.enter_context(qa_serve(env, tmp_path / f"replica{i}.log")) for i in (1, 2)]

        answers: list[dict[str, Any]] = []
        conversation_id = None
        with httpx.Client(timeout=60) as http:
            for n, question in enumerate(NARROWING["turns"]):
                url = urls[n % 2]  # replica 1, replica 2, replica 1, ...
                body = {"question": question, "conversation_id": conversation_id}
                response = http.post(f"{url}/api/ask", json=body)
                assert response.status_code == 200, response.text
                answer = response.json()
                if conversation_id is not None:
                    assert answer["conversation_id"] == conversation_id
                    previous = answers[-1]
                    # read against the turn the other replica answered: narrowed within its trials
                    assert answer["reading"]["move"] == "narrow", answer["reading"]
                    assert answer["reading"]["scope"] == [t["id"] for t in previous["trials"]]
                    assert {t["id"] for t in answer["trials"]} <= {t["id"] for t in previous["trials"]}
                conversation_id = answer["conversation_id"]
                answers.append(answer)
            last = answers[-1]
            for wanted in NARROWING["resolved_has"]:
                assert wanted.lower() in last["resolved_question"].lower(), last["resolved_question"]
            assert {t["id"] for t in last["trials"]} == set(NARROWING["trials"])

            # The same follow-up without the conversation is a question of its own: the reading came from
            # the shared store, not from the follow-up's words.
            alone = http.post(f"{urls[1]}/api/ask", json={"question": NARROWING["turns"][-1]}).json()
            assert alone["conversation_id"] != conversation_id and alone["reading"]["scope"] is None

    assert conversation_id is not None
    store = PostgresConversationStore(database)
    try:
        stored = store.history(conversation_id)
        assert [t.question for t in stored] == NARROWING["turns"]  # each turn once, in order
        assert [t.resolved for t in stored] == [a["resolved_question"] for a in answers]
        assert [t.trial_ids for t in stored] == [[x["id"] for x in a["trials"]] for a in answers]
        assert store.count() == 2  # and the lone question's conversation
    finally:
        store.close()
