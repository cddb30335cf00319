"""The store contract (nbflask/stores/base.py), run against every store.

EXTENSION POINT: to run this suite against another store, add one factory to
`STORE_FACTORIES` below. A factory takes pytest's `request` (so it can ask for fixtures such
as a running Swift server via `request.getfixturevalue`) and returns an empty store. Every
test here then runs against it; nothing else needs to change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from nbflask.stores.base import (
    SINGLE_CHECKPOINT,
    AlreadyExists,
    BadContent,
    Conflict,
    InvalidPath,
    NotFound,
    Store,
    StoreError,
)
from nbflask.stores.file import FileStore
from nbflask.stores.memory import MemoryStore

StoreFactory = Callable[[pytest.FixtureRequest], Store]


def file_store(request: pytest.FixtureRequest) -> Store:
    root = request.getfixturevalue("tmp_path") / "store-root"
    root.mkdir()
    return FileStore(root_dir=str(root))


def memory_store(request: pytest.FixtureRequest) -> Store:
    return MemoryStore()


def swift_store(request: pytest.FixtureRequest) -> Store:
    """A real Swift server (tests/support/swift_fixtures.py), a fresh container per test."""
    from nbflask.config import SwiftSettings
    from nbflask.stores.swift import SwiftStore

    return SwiftStore(SwiftSettings(**request.getfixturevalue("swift_options")))


#: One entry per store under contract.
STORE_FACTORIES = [
    pytest.param(file_store, id="file"),
    pytest.param(memory_store, id="memory"),
    pytest.param(swift_store, id="swift"),
]


@pytest.fixture(params=STORE_FACTORIES)
def store(request: pytest.FixtureRequest) -> Store:
    factory: StoreFactory = request.param
    made = factory(request)
    yield made
    made.close()


NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
BINARY = bytes(range(256)) * 3


def names(entries) -> set[str]:
    return {entry.name for entry in entries}


# -- reading and writing ---------------------------------------------------------------
def test_root_is_an_empty_directory(store):
    root = store.stat("")
    assert root.kind == "directory"
    assert store.list("") == []
    assert store.exists("")


def test_write_then_read_returns_the_same_bytes(store):
    samples = [("a.ipynb", NOTEBOOK), ("blob.bin", BINARY), ("empty.txt", b""), ("ünï cödé.txt", b"\xc3\xa9")]
    for path, data in samples:
        entry = store.write(path, data)
        assert entry.kind == "file"
        assert entry.path == path
        assert entry.size == len(data)
        assert entry.etag
        assert store.read(path) == data
        assert store.stat(path).size == len(data)


def test_write_replaces_and_every_version_has_a_new_etag(store):
    etags = {store.write("note.txt", b"same").etag for _ in range(20)}
    assert len(etags) == 20
    assert store.stat("note.txt").etag in etags
    store.write("note.txt", b"changed")
    assert store.read("note.txt") == b"changed"


def test_stat_reports_times_and_writability(store):
    entry = store.write("t.txt", b"x")
    assert entry.last_modified.tzinfo is not None
    assert entry.created.tzinfo is not None
    assert entry.writable
    assert entry.name == "t.txt"


def test_missing_entries_raise_not_found(store):
    for call in (lambda: store.stat("nope"), lambda: store.read("nope"), lambda: store.list("nope")):
        with pytest.raises(NotFound):
            call()
    assert not store.exists("nope")


def test_write_needs_an_existing_parent(store):
    with pytest.raises(NotFound):
        store.write("no/such/dir.txt", b"x")
    assert not store.exists("no")


def test_files_and_directories_are_not_interchangeable(store):
    store.mkdir("dir")
    store.write("file.txt", b"x")
    with pytest.raises(InvalidPath):
        store.write("dir", b"x")
    with pytest.raises(InvalidPath):
        store.read("dir")
    with pytest.raises(InvalidPath):
        store.list("file.txt")
    assert store.stat("dir").kind == "directory"


def test_open_stream_yields_the_content_with_its_entry(store):
    data = BINARY * 1000
    store.write("big.bin", data)
    entry, chunks = store.open_stream("big.bin", chunk_size=4096)
    assert entry.size == len(data)
    assert entry.etag == store.stat("big.bin").etag
    assert b"".join(chunks) == data
    assert b"".join(store.read_chunks("big.bin")) == data


# -- directories -----------------------------------------------------------------------
def test_mkdir_and_list_direct_children_only(store):
    store.mkdir("d")
    store.mkdir("d/inner")
    store.write("d/a.txt", b"a")
    store.write("d/inner/deep.txt", b"deep")
    store.write(".hidden", b"h")
    assert names(store.list("")) == {"d", ".hidden"}
    listing = {entry.name: entry for entry in store.list("d")}
    assert set(listing) == {"inner", "a.txt"}
    assert listing["inner"].kind == "directory"
    assert listing["a.txt"].path == "d/a.txt"
    assert listing["a.txt"].size == 1


def test_mkdir_refuses_existing_and_orphans(store):
    store.mkdir("d")
    with pytest.raises(AlreadyExists):
        store.mkdir("d")
    with pytest.raises(NotFound):
        store.mkdir("x/y")


# -- delete ----------------------------------------------------------------------------
def test_delete_file_and_empty_directory(store):
    store.write("f.txt", b"x")
    store.mkdir("d")
    store.delete("f.txt")
    store.delete("d")
    assert store.list("") == []
    with pytest.raises(NotFound):
        store.delete("f.txt")


def test_delete_takes_a_directory_with_everything_in_it(store):
    store.mkdir("d")
    store.write("d/keep.txt", b"keep")
    store.mkdir("d/inner")
    store.write("d/inner/n.ipynb", NOTEBOOK)
    store.create_checkpoint("d/inner/n.ipynb")
    store.write("other.txt", b"other")
    store.delete("d")
    assert names(store.list("")) == {"other.txt"}
    with pytest.raises(NotFound):
        store.stat("d/inner/n.ipynb")
    store.mkdir("d")
    store.mkdir("d/inner")
    store.write("d/inner/n.ipynb", b"new")
    assert store.list_checkpoints("d/inner/n.ipynb") == []
    with pytest.raises(StoreError):
        store.delete("")


def test_delete_removes_checkpoints(store):
    store.write("n.ipynb", NOTEBOOK)
    store.create_checkpoint("n.ipynb")
    store.delete("n.ipynb")
    store.write("n.ipynb", b"new")
    assert store.list_checkpoints("n.ipynb") == []


# -- copy ------------------------------------------------------------------------------
def test_copy_a_file_and_a_directory_tree(store):
    store.mkdir("d")
    store.write("d/a.txt", BINARY)
    store.mkdir("d/inner")
    store.write("d/inner/n.ipynb", NOTEBOOK)
    store.mkdir("d/empty")
    copied = store.copy("d/a.txt", "a-copy.txt")
    assert (copied.path, copied.kind, copied.size) == ("a-copy.txt", "file", len(BINARY))
    assert store.read("a-copy.txt") == BINARY
    tree = store.copy("d", "d-Copy1")
    assert (tree.path, tree.kind) == ("d-Copy1", "directory")
    assert names(store.list("d-Copy1")) == {"a.txt", "inner", "empty"}
    assert store.read("d-Copy1/inner/n.ipynb") == NOTEBOOK
    assert store.list("d-Copy1/empty") == []
    store.write("d-Copy1/a.txt", b"changed")
    assert store.read("d/a.txt") == BINARY, "a deep copy, not a link"


def test_copy_errors_change_nothing(store):
    store.mkdir("d")
    store.write("d/a.txt", b"a")
    store.write("taken.txt", b"taken")
    with pytest.raises(AlreadyExists):
        store.copy("d/a.txt", "taken.txt")
    with pytest.raises(NotFound):
        store.copy("missing.txt", "new.txt")
    with pytest.raises(NotFound):
        store.copy("d/a.txt", "nowhere/a.txt")
    with pytest.raises(InvalidPath):
        store.copy("d", "d/d")
    assert store.read("taken.txt") == b"taken"
    assert names(store.list("")) == {"d", "taken.txt"}
    assert names(store.list("d")) == {"a.txt"}


def copy_tree_with_skips(store: Store) -> None:
    store.mkdir("d")
    store.mkdir("d/skip-folder")
    store.write("d/skip-folder/inside.txt", b"s")
    store.mkdir("d/inner")
    store.write("d/inner/a.txt", b"a")
    store.write("d/inner/skip.txt", b"s")
    store.write("d/b.txt", b"b")


def test_copy_leaves_out_what_keep_refuses_with_all_it_holds(store):
    copy_tree_with_skips(store)
    asked = []

    def keep(entry):
        asked.append(entry.path)
        return not entry.name.startswith("skip")

    store.copy("d", "d-Copy1", keep=keep)
    assert names(store.list("d-Copy1")) == {"inner", "b.txt"}
    assert names(store.list("d-Copy1/inner")) == {"a.txt"}
    assert store.read("d-Copy1/inner/a.txt") == b"a"
    assert "d/skip-folder/inside.txt" not in asked, "what a refused folder holds is not asked about"


def test_a_copy_that_fails_half_way_leaves_nothing(store):
    copy_tree_with_skips(store)

    def keep(entry):
        if entry.name == "b.txt":
            raise StoreError("failed half-way")
        return True

    with pytest.raises(StoreError, match="failed half-way"):
        store.copy("d", "d-Copy1", keep=keep)
    assert names(store.list("")) == {"d"}


# -- chunked uploads -------------------------------------------------------------------
def test_chunks_become_the_file_only_at_the_last(store):
    store.write("big.bin", b"old")
    store.stage_chunk("big.bin", 1, b"a" * 1000)
    store.stage_chunk("big.bin", 2, BINARY)
    assert store.read("big.bin") == b"old", "the file changes only at the last chunk"
    assert names(store.list("")) == {"big.bin"}, "staged chunks are not listed"
    entry = store.commit_upload("big.bin", b"end")
    assert store.read("big.bin") == b"a" * 1000 + BINARY + b"end"
    assert entry.size == 1000 + len(BINARY) + 3
    assert entry.etag == store.stat("big.bin").etag
    assert names(store.list("")) == {"big.bin"}


def test_chunk_one_starts_afresh_and_a_lone_last_chunk_is_the_whole_file(store):
    store.stage_chunk("f.bin", 1, b"abandoned")
    store.stage_chunk("f.bin", 2, b"upload")
    store.stage_chunk("f.bin", 1, b"fresh ")
    assert store.commit_upload("f.bin", b"start").size == len(b"fresh start")
    assert store.read("f.bin") == b"fresh start"
    store.commit_upload("f.bin", b"only chunk")
    assert store.read("f.bin") == b"only chunk"
    store.stage_chunk("e.bin", 1, b"")
    store.commit_upload("e.bin", b"")
    assert store.read("e.bin") == b""


def test_upload_errors_leave_the_old_file(store):
    store.mkdir("d")
    store.write("f.bin", b"old")
    with pytest.raises(BadContent):
        store.stage_chunk("f.bin", 2, b"middle without a start")
    with pytest.raises(NotFound):
        store.stage_chunk("nowhere/f.bin", 1, b"x")
    with pytest.raises(InvalidPath):
        store.stage_chunk("d", 1, b"x")
    stale = store.stat("f.bin").etag
    store.stage_chunk("f.bin", 1, b"new ")
    store.write("f.bin", b"saved meanwhile")
    with pytest.raises(Conflict):
        store.commit_upload("f.bin", b"content", if_match=stale)
    assert store.read("f.bin") == b"saved meanwhile"
    with pytest.raises(BadContent):
        store.stage_chunk("f.bin", 2, b"the failed upload is gone")
    assert names(store.list("")) == {"d", "f.bin"}


def test_a_failed_commit_fails_the_upload_until_a_new_chunk_one(store):
    store.write("f.bin", b"old")
    stale = store.stat("f.bin").etag
    store.stage_chunk("f.bin", 1, b"new ")
    store.stage_chunk("f.bin", 2, b"upload ")
    store.write("f.bin", b"saved meanwhile")
    with pytest.raises(Conflict):
        store.commit_upload("f.bin", b"end", if_match=stale)
    assert_refused_until_a_new_chunk_one(store, "f.bin", kept=b"saved meanwhile")
    assert names(store.list("")) == {"f.bin"}


def assert_refused_until_a_new_chunk_one(store: Store, path: str, kept: bytes) -> None:
    """After a failed chunk or commit: a later chunk and the last one are refused, the file
    keeps `kept`, and a new chunk 1 starts an upload that goes through."""
    with pytest.raises(BadContent, match="start it again from chunk 1"):
        store.stage_chunk(path, 3, b"a later chunk")
    with pytest.raises(BadContent, match="start it again from chunk 1"):
        store.commit_upload(path, b"the last chunk alone is not the file")
    assert store.read(path) == kept
    store.stage_chunk(path, 1, b"fresh ")
    assert store.commit_upload(path, b"end").size == len(b"fresh end")
    assert store.read(path) == b"fresh end"


# -- rename ----------------------------------------------------------------------------
def test_rename_file_keeps_content_and_checkpoints(store):
    store.write("old.ipynb", NOTEBOOK)
    checkpoint = store.create_checkpoint("old.ipynb")
    store.mkdir("sub")
    entry = store.rename("old.ipynb", "sub/new.ipynb")
    assert entry.path == "sub/new.ipynb"
    assert store.read("sub/new.ipynb") == NOTEBOOK
    assert not store.exists("old.ipynb")
    assert [c.id for c in store.list_checkpoints("sub/new.ipynb")] == [checkpoint.id]


def test_rename_directory_moves_its_tree(store):
    store.mkdir("a")
    store.mkdir("a/b")
    store.write("a/b/c.txt", b"c")
    store.rename("a", "z")
    assert store.read("z/b/c.txt") == b"c"
    assert not store.exists("a")
    assert names(store.list("")) == {"z"}


def test_rename_never_overwrites(store):
    store.write("one.txt", b"1")
    store.write("two.txt", b"2")
    with pytest.raises(AlreadyExists):
        store.rename("one.txt", "two.txt")
    assert store.read("one.txt") == b"1"
    assert store.read("two.txt") == b"2"


def test_rename_errors(store):
    store.mkdir("d")
    with pytest.raises(NotFound):
        store.rename("missing.txt", "x.txt")
    store.write("f.txt", b"f")
    with pytest.raises(NotFound):
        store.rename("f.txt", "nodir/f.txt")
    with pytest.raises(InvalidPath):
        store.rename("d", "d/inside")
    assert store.read("f.txt") == b"f"


# -- compare-and-swap (If-Match) -------------------------------------------------------
def test_write_with_the_current_etag_succeeds(store):
    first = store.write("cas.txt", b"v1")
    second = store.write("cas.txt", b"v2", if_match=first.etag)
    assert store.read("cas.txt") == b"v2"
    assert second.etag != first.etag


def test_write_with_a_stale_etag_conflicts_and_changes_nothing(store):
    first = store.write("cas.txt", b"v1")
    store.write("cas.txt", b"v2")
    with pytest.raises(Conflict):
        store.write("cas.txt", b"lost update", if_match=first.etag)
    assert store.read("cas.txt") == b"v2"


def test_if_match_on_a_missing_file_conflicts(store):
    with pytest.raises(Conflict):
        store.write("new.txt", b"x", if_match="anything")
    assert not store.exists("new.txt")


def test_delete_and_rename_honour_if_match(store):
    stale = store.write("f.txt", b"1").etag
    current = store.write("f.txt", b"2").etag
    with pytest.raises(Conflict):
        store.delete("f.txt", if_match=stale)
    with pytest.raises(Conflict):
        store.rename("f.txt", "g.txt", if_match=stale)
    assert store.read("f.txt") == b"2"
    store.rename("f.txt", "g.txt", if_match=current)
    store.delete("g.txt", if_match=store.stat("g.txt").etag)
    assert store.list("") == []


def test_concurrent_writers_leave_one_complete_version(store):
    payloads = [bytes([i]) * 200_000 for i in range(8)]

    def save(data: bytes) -> None:
        for _ in range(5):
            store.write("race.bin", data)

    threads = [threading.Thread(target=save, args=(data,)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.read("race.bin") in payloads
    assert names(store.list("")) == {"race.bin"}


def test_compare_and_swap_lets_exactly_one_racer_win(store):
    base = store.write("cas.bin", b"base").etag
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            store.write("cas.bin", f"writer {i}".encode(), if_match=base)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1
    assert outcomes.count("conflict") == 7


def test_of_clients_creating_one_file_at_once_exactly_one_is_told_it_is_new(store):
    """Six parallel PUTs of a new 4 MB notebook: two were told 201 (each looked before it
    wrote), each made a first checkpoint, and on disk-full either could take back the
    notebook the other was told it created."""
    payloads = [bytes([i]) * 4_000_000 for i in range(6)]
    start = threading.Barrier(len(payloads))
    told_new: list[bool] = []

    def save(data: bytes) -> None:
        start.wait()
        told_new.append(store.save("big.ipynb", data)[1])

    threads = [threading.Thread(target=save, args=(data,)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(told_new) == [False] * 5 + [True]
    assert store.read("big.ipynb") in payloads


# -- checkpoints -----------------------------------------------------------------------
def test_checkpoints_create_list_restore(store):
    store.write("n.ipynb", b"version 1")
    first = store.create_checkpoint("n.ipynb")
    store.write("n.ipynb", b"version 2")
    second = store.create_checkpoint("n.ipynb")
    store.write("n.ipynb", b"version 3")
    listed = store.list_checkpoints("n.ipynb")
    assert [c.id for c in listed] == [first.id, second.id]
    assert listed[0].last_modified <= listed[1].last_modified
    entry = store.restore_checkpoint("n.ipynb", first.id)
    assert store.read("n.ipynb") == b"version 1"
    assert entry.size == len(b"version 1")
    store.restore_checkpoint("n.ipynb", second.id)
    assert store.read("n.ipynb") == b"version 2"


def test_save_tells_a_new_file_from_a_replaced_one(store):
    entry, new = store.save("s.ipynb", b"first")
    assert new and entry.etag == store.stat("s.ipynb").etag
    entry, new = store.save("s.ipynb", b"second")
    assert not new and entry.etag == store.stat("s.ipynb").etag and store.read("s.ipynb") == b"second"
    store.mkdir("folder")
    with pytest.raises(InvalidPath):
        store.save("folder", b"x")
    with pytest.raises(NotFound):
        store.save("missing/s.ipynb", b"x")
    with pytest.raises(Conflict):
        store.save("s.ipynb", b"third", if_match="not-the-etag")


@pytest.mark.parametrize("single", [True, False])
def test_ensure_checkpoint_makes_one_only_when_there_is_none(store, single):
    store.save("e.ipynb", b"version 1")
    store.ensure_checkpoint("e.ipynb", single=single, new=True)
    [first] = store.list_checkpoints("e.ipynb")
    assert first.id == SINGLE_CHECKPOINT or not single
    store.save("e.ipynb", b"version 2")
    store.ensure_checkpoint("e.ipynb", single=single)
    assert store.list_checkpoints("e.ipynb") == [first]
    store.delete_checkpoint("e.ipynb", first.id)
    store.ensure_checkpoint("e.ipynb", single=single)
    [again] = store.list_checkpoints("e.ipynb")
    store.restore_checkpoint("e.ipynb", again.id)
    assert store.read("e.ipynb") == b"version 2"
    with pytest.raises(NotFound):
        store.ensure_checkpoint("gone.ipynb", single=single, new=True)


def test_delete_checkpoint(store):
    store.write("n.ipynb", b"x")
    checkpoint = store.create_checkpoint("n.ipynb")
    store.delete_checkpoint("n.ipynb", checkpoint.id)
    assert store.list_checkpoints("n.ipynb") == []
    with pytest.raises(NotFound):
        store.delete_checkpoint("n.ipynb", checkpoint.id)
    with pytest.raises(NotFound):
        store.restore_checkpoint("n.ipynb", checkpoint.id)
    assert store.read("n.ipynb") == b"x"


def test_checkpoint_ids_from_clients_are_not_paths(store):
    store.write("n.ipynb", b"x")
    for hostile in ("../n.ipynb", "/etc/passwd", "", "checkpoint/../../x"):
        with pytest.raises(NotFound):
            store.restore_checkpoint("n.ipynb", hostile)
        with pytest.raises(NotFound):
            store.delete_checkpoint("n.ipynb", hostile)
    assert store.read("n.ipynb") == b"x"


def test_checkpoints_need_an_existing_file(store):
    store.mkdir("d")
    with pytest.raises(NotFound):
        store.create_checkpoint("missing.ipynb")
    with pytest.raises(NotFound):
        store.list_checkpoints("missing.ipynb")
    with pytest.raises(InvalidPath):
        store.create_checkpoint("d")


def test_checkpoints_are_per_file(store):
    store.write("a.ipynb", b"a")
    store.write("a.txt", b"a text")
    store.create_checkpoint("a.ipynb")
    assert store.list_checkpoints("a.txt") == []
    assert names(store.list("")) == {"a.ipynb", "a.txt"}


def test_the_single_checkpoint_is_replaced_each_time(store):
    store.write("n.ipynb", b"version 1")
    first = store.create_checkpoint("n.ipynb", single=True)
    assert first.id == SINGLE_CHECKPOINT
    store.write("n.ipynb", b"version 2")
    again = store.create_checkpoint("n.ipynb", single=True)
    assert again.id == SINGLE_CHECKPOINT and again.last_modified >= first.last_modified
    assert store.list_checkpoints("n.ipynb") == [again]
    store.write("n.ipynb", b"version 3")
    store.restore_checkpoint("n.ipynb", SINGLE_CHECKPOINT)
    assert store.read("n.ipynb") == b"version 2"
    stamped = store.create_checkpoint("n.ipynb")
    assert [c.id for c in store.list_checkpoints("n.ipynb")] == [stamped.id, SINGLE_CHECKPOINT]
    store.rename("n.ipynb", "m.ipynb")
    assert [c.id for c in store.list_checkpoints("m.ipynb")] == [stamped.id, SINGLE_CHECKPOINT]
    store.delete_checkpoint("m.ipynb", SINGLE_CHECKPOINT)
    assert [c.id for c in store.list_checkpoints("m.ipynb")] == [stamped.id]


def test_prune_checkpoints_keeps_the_newest(store):
    store.write("n.ipynb", b"0")
    made = []
    for i in range(5):
        store.write("n.ipynb", str(i).encode())
        made.append(store.create_checkpoint("n.ipynb").id)
    store.prune_checkpoints("n.ipynb", keep=2)
    assert [c.id for c in store.list_checkpoints("n.ipynb")] == made[-2:]
    store.restore_checkpoint("n.ipynb", made[-2])
    assert store.read("n.ipynb") == b"3"


def test_describe_and_close(store):
    assert isinstance(store.describe(), str) and store.describe()


class StreamingMemoryStore(MemoryStore):
    """A store that streams through read_chunks only (as a store written before open_stream)."""

    def read_chunks(self, path, chunk_size=1 << 20):
        data = self.read(path)
        yield from (data[i : i + 3] for i in range(0, len(data), 3))


def test_open_stream_uses_a_store_s_own_read_chunks():
    store = StreamingMemoryStore()
    store.write("f.bin", b"0123456789")
    entry, chunks = store.open_stream("f.bin")
    assert entry.size == 10
    assert list(chunks) == [b"012", b"345", b"678", b"9"]
