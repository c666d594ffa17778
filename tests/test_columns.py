"""Columns of integers spilled to a scratch file read back as the ``array`` they stand for, in memory a
buffer's worth."""

from __future__ import annotations

import multiprocessing
import os
from array import array
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from qa.columns import ByteRows, Column


def _sum_in_child(column: Column, out: Connection) -> None:
    view = column.view()
    out.send((len(view), sum(view[i] for i in range(len(view)))))
    out.close()


@pytest.mark.parametrize("code", ["q", "i", "b"])
def test_a_spilled_column_reads_as_the_array_of_its_items(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Column, "BUFFER", 10)
    rng = np.random.default_rng(7)
    spilled, kept, plain = Column(code, spill=True, folder=tmp_path), Column(code), array(code)
    top = 100 if code == "b" else 2**30
    for step in range(60):  # appends and extends of any size, a view read between some of them
        items = rng.integers(-top, top, size=int(rng.integers(0, 25))).tolist()
        if step % 3:
            for item in items:
                spilled.append(item)
                kept.append(item)
        else:
            spilled.extend(items)
            kept.extend(items)
        plain.extend(items)
        assert spilled.held < Column.BUFFER and len(spilled) == len(plain)
        if step % 7 == 0:
            view = spilled.view()
            assert len(view) == len(plain) and view[: len(plain)].tolist() == plain.tolist()
    assert spilled.spilled and not kept.spilled and kept.held == len(plain)
    assert list(tmp_path.iterdir()) == []  # the file has no name: a killed build leaves none behind
    old = spilled.view()
    spilled.append(1)
    kept.append(1)
    plain.append(1)  # an older view still reads what it had
    assert old.tolist() == plain[:-1].tolist()
    for column in (spilled, kept):
        view = column.view()
        assert [view[i] for i in range(len(plain))] == plain.tolist() and view[-1] == 1
        assert view[17:143].tolist() == plain[17:143].tolist() and view[5:5].tolist() == []
        whole = np.frombuffer(plain, dtype=np.dtype(code))
        assert np.array_equal(column.numpy(), whole) and np.array_equal(column.numpy(40, 97), whole[40:97])
        assert column.numpy(40, 97).dtype == np.dtype(code) and column.numpy(len(plain), 10**9).size == 0
    context = multiprocessing.get_context("fork")  # the build steps' process reads the parent's columns
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_sum_in_child, args=(spilled, writer))
    child.start()
    assert reader.recv() == (len(plain), sum(plain))
    child.join(30)
    spilled.close()
    assert len(spilled) == 0 and spilled.view().tolist() == [] and old.tolist() == plain[:-1].tolist()


def test_an_empty_spilled_column_has_an_empty_view(tmp_path: Path) -> None:
    column = Column("q", spill=True, folder=tmp_path)
    assert len(column.view()) == 0 and column.numpy().size == 0 and column.numpy().dtype == np.int64
    assert os.listdir(tmp_path) == []


def test_byte_rows_read_back_as_appended_by_index_and_in_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Column, "BUFFER", 16)  # spilled after a few rows
    rng = np.random.default_rng(3)
    rows = [rng.bytes(int(rng.integers(0, 40))) for _ in range(300)]  # empty rows among them
    kept = ByteRows(folder=tmp_path)
    for k, row in enumerate(rows):
        kept.append(row)
        if k % 50 == 0:  # read between appends
            assert kept.row(k) == row and list(kept.rows(max(0, k - 3))) == rows[max(0, k - 3) : k + 1]
    assert len(kept) == len(rows) and kept._data.spilled and kept._data.held < 16
    assert [kept.row(k) for k in range(len(rows))] == rows and kept.row(-1) == rows[-1]
    assert (
        list(kept.rows()) == rows
        and list(kept.rows(120, 177)) == rows[120:177]
        and list(kept.rows(9, 9)) == []
    )
    with pytest.raises(IndexError):
        kept.row(len(rows))
    kept.close()
    assert len(kept) == 0 and list(kept.rows()) == []
