"""The PostgreSQL store's own ways: shared by replicas (two stores, one database, one conversation), clear
errors for a bad URL or a server that is not there, psycopg imported only when QA_DATABASE_URL is set."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from postgres_server import PostgresServer, running_postgres
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from qa.api.app import create_app
from qa.cli import main
from qa.conversations import Turn
from qa.conversations.postgres import PostgresConversationStore
from qa.errors import DatabaseUnavailable
from qa.services import Services
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def _turn(question: str) -> Turn:
    return Turn(question=question, resolved=question)


def test_two_replicas_share_one_conversation(postgres: PostgresServer) -> None:
    """Two stores on one new database, created at the same moment (the schema once), appending to one
    conversation from many threads at once: every turn kept, each numbered once, both reading the same."""
    url = postgres.new_database()
    replicas: list[PostgresConversationStore] = []
    openers = [threading.Thread(target=lambda: replicas.append(PostgresConversationStore(url))) for _ in "ab"]
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    assert len(replicas) == 2 and all(r.shared for r in replicas)
    cid = replicas[0].new_id()
    replicas[0].append(cid, _turn("first"))
    assert [t.question for t in replicas[1].history(cid)] == ["first"]  # committed before append returned

    def ask_many(store: PostgresConversationStore, name: str) -> None:
        for i in range(20):
            store.append(cid, _turn(f"{name}{i}"))

    writers = [
        threading.Thread(target=ask_many, args=(r, name)) for r, name in zip(replicas, "ab", strict=True)
    ]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    seen = [t.question for t in replicas[0].history(cid)]
    assert seen == [t.question for t in replicas[1].history(cid)]
    assert seen[0] == "first" and sorted(seen[1:]) == sorted(f"{n}{i}" for n in "ab" for i in range(20))
    for name in "ab":  # each replica's turns in the order it appended them
        assert [q for q in seen if q[0] == name] == [f"{name}{i}" for i in range(20)]
    where = f"postgres@{postgres.socket_dir}:{postgres.port}/{conninfo_to_dict(url)['dbname']}"
    assert replicas[0].stats() == {"conversations": 1, "database": where}  # no password, whatever the URL
    for r in replicas:
        r.close()


def test_a_database_that_goes_away_is_a_clear_error_and_answers_still_go_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_postgres() as server:
        store = PostgresConversationStore(server.url(), timeout=1)
        cid = store.new_id()
        store.append(cid, _turn("q"))
    with pytest.raises(DatabaseUnavailable, match="cannot use the conversation database") as info:
        store.history(cid)
    assert info.value.status == 503
    with caplog.at_level(logging.ERROR):
        store.append(cid, _turn("lost"))  # logged: the answer that made it is not held back
    assert "could not save a conversation turn" in caplog.text
    store.close()


def test_through_the_api_a_database_that_goes_away_fails_follow_ups_only(services: Services) -> None:
    """The app over a PostgreSQL store: a follow-up is read against the stored turn; once the database is
    gone a follow-up is a 503 in the one error shape, and a new question is still answered."""
    with running_postgres() as server:
        store = PostgresConversationStore(server.url(), timeout=1)
        app = create_app(services=dataclasses.replace(services, conversations=store))
        with TestClient(app) as client:
            first = client.post("/api/ask", json={"question": HEADLINE}).json()
            cid = first["conversation_id"]
            assert [t.question for t in store.history(cid)] == [HEADLINE]  # stored before the answer left
            follow = client.post(
                "/api/ask", json={"question": "Which of them are in melanoma?", "conversation_id": cid}
            )
            assert first["trials"] and follow.json()["reading"]["move"] == "narrow"
            assert follow.json()["reading"]["scope"] == [t["id"] for t in first["trials"]]
    with TestClient(app) as client:
        gone = client.post(
            "/api/ask", json={"question": "Which of them are phase 3?", "conversation_id": cid}
        )
        assert gone.status_code == 503
        assert gone.json()["error"]["code"] == "database_unavailable"
        assert "cannot use the conversation database" in gone.json()["error"]["message"]
        fresh = client.post("/api/ask", json={"question": HEADLINE})
        assert fresh.status_code == 200 and fresh.json()["answer"] == first["answer"]
    store.close()


def test_a_server_that_is_not_there_is_one_error_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://qa:s3cret@/qa?host={tmp_path}&port=5999"
    assert main(["serve", "--index-dir", str(tmp_path), "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot use the conversation database qa@{tmp_path}:5999/qa: ")
    assert "s3cret" not in err and "Traceback" not in err and err.count("\n") == 1


def test_a_url_that_is_not_postgresql_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError, match="must be a PostgreSQL URL"):
        Settings(database_url="mysql://qa@localhost/qa")
    assert main(["serve", "--index-dir", str(tmp_path), "--database-url", "sqlite:///c.db"]) == 2
    assert capsys.readouterr().err.startswith("error: invalid setting: database_url: ")
    assert main(["serve", "--index-dir", str(tmp_path), "--database-url", "dbname=qa colour=blue"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: QA_DATABASE_URL is not a PostgreSQL connection URL (") and "colour" in err


def test_psycopg_is_imported_only_when_a_database_url_is_set(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from qa.api.app import create_app\n"
        "from qa.conversations import open_store\n"
        "from qa.settings import Settings\n"
        f"open_store(Settings(index_dir={str(tmp_path)!r})).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
