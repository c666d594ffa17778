"""Document ids numbered as they come, held as a table of hashes (in memory, or mapped from a scratch file)
and their bytes in scratch files, read back as the dict and list they stand for."""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from conftest import CORPUS
from readers.paperset import PAPERS

import qa.keys
from qa.keys import KeyRows


def _real_ids() -> list[str]:
    """File stems of the shared papers and seed corpus (real ids: hyphens, digits, dots), then made-up ones
    in their shape, with repeats and non-ASCII letters."""
    stems = sorted({p.stem for p in PAPERS.iterdir()} | {p.stem for p in CORPUS.glob("*.txt")})
    rng = random.Random(3)
    made = [f"{rng.choice(stems)}-{rng.randrange(4000)}{'é' if i % 11 == 0 else ''}" for i in range(6000)]
    return [*stems, *made, *stems[:5]]


def _lookups_in_child(keys: KeyRows, probe: list[str], out: Connection) -> None:
    out.send([keys.get(k) for k in probe])
    out.close()


@pytest.mark.parametrize("collide", [False, True], ids=["python-hash", "every-hash-colliding"])
@pytest.mark.parametrize("spill", [False, True], ids=["held", "spilled"])
def test_key_rows_read_as_the_dict_of_first_rows_and_the_list_of_ids(
    spill: bool, collide: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa.columns.Column.BUFFER", 100)  # spilled columns write out many times
    monkeypatch.setattr(qa.keys, "MAPPED_SLOTS", 64)  # a spilled table is mapped from its second growth on
    monkeypatch.setattr(qa.keys, "_GROW_CHUNK", 50)  # growing places the old slots in many chunks
    if collide:  # a handful of hash values for thousands of ids: every lookup walks past others' slots
        monkeypatch.setattr(qa.keys, "_hash", lambda key: len(key) % 7 - 3)
    ids = _real_ids()[: 1500 if collide else None]
    keys, first_rows = KeyRows(spill=spill, folder=tmp_path), {}
    for row, key in enumerate(ids):
        assert keys.append(key) == (key not in first_rows)
        first_rows.setdefault(key, row)
        if row % 97 == 0:
            earlier = ids[row // 2]
            assert keys.get(earlier) == first_rows[earlier] and keys.key(row // 3) == ids[row // 3]
    assert keys.rows == len(ids) and len(keys) == len(first_rows) < len(ids)
    assert dict(keys.items()) == first_rows and list(keys) == list(first_rows)  # iterated in first-row order
    assert [keys.key(r) for r in range(len(ids))] == ids
    assert sorted(keys.repeated) == sorted(k for k in first_rows if ids.count(k) > 1)
    assert keys.get("no such id") is None and "no such id" not in keys and keys.get(7) is None  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        keys["no such id"]
    with pytest.raises(IndexError):
        keys.key(len(ids))
    assert list(tmp_path.iterdir()) == []  # scratch files have no name
    assert keys.mapped == spill
    if spill:
        assert keys.held_bytes < 100 * 9  # two columns' buffers: neither the ids nor the table
    context = multiprocessing.get_context("fork")  # the build steps' process reads the parent's tables
    reader, writer = context.Pipe(duplex=False)
    probe = [*ids[::37], "no such id"]
    child = context.Process(target=_lookups_in_child, args=(keys, probe, writer))
    child.start()
    assert reader.recv() == [first_rows.get(k) for k in probe]
    child.join(30)
    keys.close()
    assert len(keys) == 0 and keys.get(ids[0]) is None
