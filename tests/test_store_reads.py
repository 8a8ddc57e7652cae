"""The store's read connections: rows as sqlite-utils gives them, and no way to write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store import Store


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "reads.db")
    s.migrate()
    s.write_sync(
        lambda db: db.execute(
            "INSERT INTO levels (name, floor_number, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ["L1", 1, "2026-01-01T00:00:00.000000+00:00", "2026-01-01T00:00:00.000000+00:00"],
        )
    )
    yield s
    s.close()


def test_reader_query_gives_dicts_like_sqlite_utils(store: Store) -> None:
    rows = list(store.reader.query("SELECT id, name, name FROM levels WHERE floor_number = ?", [1]))
    # Duplicate column names are de-duplicated exactly as sqlite-utils does it.
    assert rows == [{"id": 1, "name": "L1", "name_2": "L1"}]
    assert list(store.reader.query("SELECT name FROM levels WHERE floor_number = 9")) == []
    # sqlite-utils wraps query() in a savepoint to undo a statement that writes; the
    # readers need none, because SQLite itself refuses the write.
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.reader.query("DELETE FROM levels RETURNING id")


async def test_readers_refuse_writes(store: Store) -> None:
    for statement in (
        "DELETE FROM levels",
        "UPDATE levels SET name = 'x'",
        "INSERT INTO levels (name, floor_number, created_at, updated_at) VALUES ('x', 2, '', '')",
    ):
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.reader.execute(statement)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.read_in_thread(lambda db, s=statement: db.execute(s))
    assert [r["name"] for r in store.reader.query("SELECT name FROM levels")] == ["L1"]
    # The writer still writes, and the readers see it.
    await store.write(lambda db: db.execute("UPDATE levels SET name = 'Ground' WHERE id = 1"))
    assert [r["name"] for r in store.reader.query("SELECT name FROM levels")] == ["Ground"]
