from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthcv.errors import StoreError
from synthcv.store import SCHEMA_VERSION, Failure, StoredAnswer, open_store


def answer(key: str, content: str = "text") -> StoredAnswer:
    return StoredAnswer(key, "cv", "high", 0, content, "stop", "m", 10, 20)


async def test_answers_round_trip_and_replace_failures(tmp_path: Path) -> None:
    with open_store(tmp_path / "c.sqlite") as store:
        async with store.writer() as writer:
            await writer.write([], [Failure("k1", "cv", "high", 0, "500", "boom", 3)])
            await writer.write([], [Failure("k1", "cv", "high", 0, "timeout", "slow", 2)])
            assert [(f.error, f.attempts) for f in store.failures()] == [("timeout", 5)]
            await writer.write([answer("k1"), answer("k2", 'x,"y"\n=z')], [])
            await writer.write([answer("k1", "second copy is ignored")], [])
        assert store.done_keys() == {"k1", "k2"}
        assert store.failures() == []
        frame = store.answers(["k2", "k1", "absent"]).sort("key")
        assert frame["content"].to_list() == ["text", 'x,"y"\n=z']


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=50), max_size=20))
def test_property_write_then_read_returns_what_was_written(tmp_path: Path, contents: dict[str, str]) -> None:
    import anyio

    path = tmp_path / f"{uuid.uuid4().hex}.sqlite"  # a fresh cache per example

    async def write() -> None:
        with open_store(path) as store:
            async with store.writer() as writer:
                await writer.write([answer(k, v) for k, v in contents.items()], [])
                await writer.write([answer(k, v) for k, v in contents.items()], [])  # idempotent

    anyio.run(write)
    with open_store(path) as store:
        assert store.done_keys() == set(contents)
        frame = store.answers(list(contents))
        assert dict(zip(frame["key"], frame["content"], strict=True)) == contents


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a synthcv cache"):
        open_store(path)
    assert path.read_bytes().startswith(b"this is not sqlite")  # untouched


def test_foreign_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        open_store(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    open_store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer synthcv"):
        open_store(path)


def test_missing_cache_for_read_only_commands(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nothing generated yet"):
        open_store(tmp_path / "absent.sqlite", create=False)


async def test_only_a_truncated_answer_gives_way_to_a_later_one(tmp_path: Path) -> None:
    def cut(key: str, content: str) -> StoredAnswer:
        return StoredAnswer(key, "cv", "high", 0, content, "length", "m", 10, 1000)

    with open_store(tmp_path / "c.sqlite") as store:
        async with store.writer() as writer:
            await writer.write([cut("k1", "half"), answer("k2", "whole")], [])
            assert store.done_keys() - store.truncated_keys() == {"k2"}  # what --retry-truncated asks again
            await writer.write([cut("k1", "half again"), cut("k2", "cut later")], [])
            await writer.write([answer("k1", "whole at last")], [])
            await writer.write([answer("k1", "yet another")], [])
        frame = store.answers(["k1", "k2"]).sort("key")
    assert frame["content"].to_list() == ["whole at last", "whole"]
    assert frame["finish_reason"].to_list() == ["stop", "stop"]
