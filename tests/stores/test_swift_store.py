"""The Swift store against a real Swift: its options, its layout in the container, its rules.

The store contract itself (what every store must do) is checked by the contract suite with
Swift as one of its stores; these tests check what is Swift's own: how objects are named,
pseudo-folders, prefixes shared in one container, checkpoints kept by server-side COPY,
metadata, ETags, and the container being created (or not).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from swiftclient.client import Connection
from test_store_contract import assert_refused_until_a_new_chunk_one

from nbflask.config import ConfigError, SwiftSettings, load_settings
from nbflask.stores import open_store
from nbflask.stores.base import (
    AlreadyExists,
    Conflict,
    InvalidPath,
    NotFound,
    StoreFull,
    Unavailable,
)
from nbflask.stores.swift import CHECKPOINTS, UPLOADS, SwiftStore, connection_options, uploads


def swift_store(**options: Any) -> SwiftStore:
    """A store built as a deployment builds it: its options checked and made plain on loading."""
    store = open_store(load_settings({"store": {"class": "swift", **options}}, environ={}).store)
    assert isinstance(store, SwiftStore)
    return store


@pytest.fixture
def store(swift_options: dict[str, Any]) -> SwiftStore:
    return swift_store(**swift_options)


@pytest.fixture
def raw(swift_server: Any) -> Connection:
    """A plain swiftclient connection, to look at the container behind the store's back."""
    env = swift_server.env
    return Connection(authurl=env["ST_AUTH"], user=env["ST_USER"], key=env["ST_KEY"], retries=0, timeout=10)


def names(raw: Connection, container: str) -> list[str]:
    return [item["name"] for item in raw.get_container(container, full_listing=True)[1]]


# ---------------------------------------------------------------------------- options


def test_keystone_without_its_client_library_is_a_start_up_error() -> None:
    keystone = SwiftSettings(
        auth_url="https://keystone.example/v3", user="alice", key="pw", auth_version="3", project_name="p"
    )
    with pytest.raises(ValueError, match="pip install python-keystoneclient"):
        SwiftStore(keystone)


def test_keystone_v3_settings_become_swiftclient_os_options() -> None:
    kwargs = connection_options(
        SwiftSettings(
            auth_url="https://keystone.example/v3",
            user="alice",
            key="pw",
            auth_version="3",
            region="RegionOne",
            project_name="science",
            project_domain_name="lab",
            timeout=7.5,
            retries=2,
        )
    )
    assert kwargs["auth_version"] == "3"
    assert kwargs["os_options"] == {
        "project_name": "science",
        "user_domain_name": "Default",
        "project_domain_name": "lab",
        "region_name": "RegionOne",
    }
    assert (kwargs["timeout"], kwargs["retries"]) == (7.5, 2)


def test_every_connection_has_a_timeout_and_few_retries(store: SwiftStore) -> None:
    """swiftclient's defaults (no timeout, 5 retries = 31 s of backoff) must never apply."""
    kwargs = store.client.connection_options
    assert kwargs["timeout"] == 3
    assert kwargs["retries"] == 1
    assert kwargs["max_backoff"] <= 2
    assert "os_options" not in kwargs  # v1 auth: no Keystone options


def test_yaml_store_section_builds_a_swift_store(swift_options: dict[str, Any]) -> None:
    settings = load_settings({"store": {"class": "swift", **swift_options, "prefix": "team-a"}})
    store = open_store(settings.store)
    assert isinstance(store, SwiftStore)
    assert store.prefix == "team-a/"
    assert "container" in store.describe() and swift_options["container"] in store.describe()


def test_the_example_config_works_with_secrets_from_the_environment(
    swift_server: Any, swift_container: str
) -> None:
    """config/swift.yaml as a deployment uses it: login and container from NBFLASK_STORE_*."""
    example = Path(__file__).resolve().parents[2] / "config" / "swift.yaml"
    environ = {
        "NBFLASK_STORE_AUTH_URL": swift_server.auth_url,
        "NBFLASK_STORE_USER": swift_server.env["ST_USER"],
        "NBFLASK_STORE_KEY": swift_server.env["ST_KEY"],
        "NBFLASK_STORE_CONTAINER": swift_container,
    }
    store = open_store(load_settings(example, environ=environ).store)
    assert isinstance(store, SwiftStore) and store.prefix == "team-a/"
    store.write("hello.ipynb", b"{}")
    assert [entry.name for entry in store.list("")] == ["hello.ipynb"]


# ---------------------------------------------------------------------------- layout


def test_files_are_objects_named_by_path_with_md5_etags(store: SwiftStore, raw: Connection) -> None:
    data = b'{"cells": []}'
    store.mkdir("papers")
    entry = store.write("papers/Ünïcode nb (1) ✓.ipynb", data)
    headers, body = raw.get_object(store.container, "papers/Ünïcode nb (1) ✓.ipynb")
    assert body == data
    assert headers["etag"] == hashlib.md5(data).hexdigest()
    assert entry.etag.startswith(headers["etag"] + "-")  # + the version's timestamp
    assert entry.size == len(data)
    assert headers["x-object-meta-created"] == entry.created.isoformat()


def test_an_empty_folder_persists_as_a_marker_object(store: SwiftStore, raw: Connection) -> None:
    store.mkdir("empty")
    headers = raw.head_object(store.container, "empty/")
    assert headers["content-type"] == "application/directory"
    assert headers["content-length"] == "0"
    listed = store.list("")
    assert [(e.name, e.kind) for e in listed] == [("empty", "directory")]
    assert store.list("empty") == []
    assert store.stat("empty").kind == "directory"


def test_folders_made_by_other_swift_tools_are_listed(store: SwiftStore, raw: Connection) -> None:
    """`swift upload` makes no folder markers: a shared prefix alone is a folder."""
    store.list("")  # creates the container
    raw.put_object(store.container, "uploaded/deep/data.csv", b"a,b\n")
    assert [(e.name, e.kind) for e in store.list("")] == [("uploaded", "directory")]
    assert [(e.name, e.kind) for e in store.list("uploaded")] == [("deep", "directory")]
    assert store.read("uploaded/deep/data.csv") == b"a,b\n"
    store.delete("uploaded")
    assert store.list("") == []
    assert raw.get_container(store.container)[1] == []


def test_a_chunked_upload_becomes_one_plain_object_and_leaves_no_segments(
    store: SwiftStore, raw: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "MAX_SEGMENTS", 2)  # nested manifests, without 1,001 chunks
    store.write("big.bin", b"old")
    parts = [bytes([n]) * 1000 for n in range(5)]
    for number, part in enumerate(parts[:-1], start=1):
        store.stage_chunk("big.bin", number, part)
    staged = [item["name"] for item in raw.get_container(store.container, prefix=f"{UPLOADS}/")[1]]
    assert staged == [f"{UPLOADS}/big.bin/{n:010d}" for n in range(1, 5)]
    assert "x-delete-at" in raw.head_object(store.container, staged[0]), "abandoned segments expire"
    assert store.read("big.bin") == b"old"
    entry = store.commit_upload("big.bin", parts[-1])
    assert store.read("big.bin") == b"".join(parts) and entry.size == 5000
    headers = raw.head_object(store.container, "big.bin")
    assert "x-static-large-object" not in headers and "x-delete-at" not in headers
    assert headers["etag"].strip('"') == hashlib.md5(b"".join(parts)).hexdigest()
    assert [item["name"] for item in raw.get_container(store.container)[1]] == ["big.bin"]


def test_folder_copies_are_server_side_and_new(store: SwiftStore, raw: Connection) -> None:
    store.mkdir("d")
    store.write("d/a.txt", b"a")
    raw.put_object(store.container, "d/deep/b.txt", b"b")  # a folder without a marker
    copied = store.copy("d", "e")
    assert copied.kind == "directory"
    names = sorted(item["name"] for item in raw.get_container(store.container, prefix="e/")[1])
    assert names == ["e/", "e/a.txt", "e/deep/b.txt"]
    assert store.stat("e/a.txt").created > store.stat("d/a.txt").created


def test_prefixes_let_deployments_share_one_container(swift_options: dict[str, Any], raw: Connection) -> None:
    team_a = swift_store(**swift_options, prefix="team-a")
    team_b = swift_store(**swift_options, prefix="/team-b/")
    team_a.write("plan.ipynb", b"A")
    team_b.write("plan.ipynb", b"B")
    team_b.mkdir("only-b")
    team_a.create_checkpoint("plan.ipynb")
    assert [e.name for e in team_a.list("")] == ["plan.ipynb"]
    assert sorted(e.name for e in team_b.list("")) == ["only-b", "plan.ipynb"]
    assert (team_a.read("plan.ipynb"), team_b.read("plan.ipynb")) == (b"A", b"B")
    assert all(name.startswith(("team-a/", "team-b/")) for name in names(raw, swift_options["container"]))
    assert len(team_a.list_checkpoints("plan.ipynb")) == 1
    assert team_b.list_checkpoints("plan.ipynb") == []


def test_checkpoints_are_server_side_copies_hidden_from_listings(store: SwiftStore, raw: Connection) -> None:
    store.write("nb.ipynb", b"v1")
    first = store.create_checkpoint("nb.ipynb")
    store.write("nb.ipynb", b"v2")
    second = store.create_checkpoint("nb.ipynb")
    assert [c.id for c in store.list_checkpoints("nb.ipynb")] == [first.id, second.id]
    assert raw.get_object(store.container, f"{CHECKPOINTS}/nb.ipynb/{first.id}")[1] == b"v1"
    assert [e.name for e in store.list("")] == ["nb.ipynb"]
    with pytest.raises(InvalidPath, match="reserved"):
        store.write(f"{CHECKPOINTS}/nb.ipynb/x", b"sneaky")
    store.write("nb.ipynb", b"v3")
    restored = store.restore_checkpoint("nb.ipynb", first.id)
    assert store.read("nb.ipynb") == b"v1"
    assert restored.etag.startswith(hashlib.md5(b"v1").hexdigest())
    store.delete_checkpoint("nb.ipynb", first.id)
    assert [c.id for c in store.list_checkpoints("nb.ipynb")] == [second.id]
    with pytest.raises(NotFound):
        store.delete_checkpoint("nb.ipynb", first.id)
    with pytest.raises(NotFound):
        store.restore_checkpoint("nb.ipynb", "../../nb.ipynb")


def test_created_survives_saves_and_renames(store: SwiftStore) -> None:
    created = store.write("a.ipynb", b"1").created
    assert store.write("a.ipynb", b"2").created == created
    moved = store.rename("a.ipynb", "b.ipynb")
    assert moved.created == created
    assert moved.etag.startswith(hashlib.md5(b"2").hexdigest())


def test_folder_rename_moves_every_object_and_checkpoint(store: SwiftStore, raw: Connection) -> None:
    store.mkdir("old")
    store.mkdir("old/sub")
    store.mkdir("old/empty")
    store.write("old/sub/nb.ipynb", b"x")
    checkpoint = store.create_checkpoint("old/sub/nb.ipynb")
    store.mkdir("parent")
    entry = store.rename("old", "parent/new")
    assert entry.kind == "directory"
    assert sorted(names(raw, store.container)) == sorted(
        [
            "parent/",
            "parent/new/",
            "parent/new/sub/",
            "parent/new/empty/",
            "parent/new/sub/nb.ipynb",
            f"{CHECKPOINTS}/parent/new/sub/nb.ipynb/{checkpoint.id}",
        ]
    )
    assert store.read("parent/new/sub/nb.ipynb") == b"x"
    assert [c.id for c in store.list_checkpoints("parent/new/sub/nb.ipynb")] == [checkpoint.id]
    with pytest.raises(InvalidPath, match="into itself"):
        store.rename("parent", "parent/new/inside")
    with pytest.raises(AlreadyExists):
        store.rename("parent/new/sub/nb.ipynb", "parent/new")


def test_deleting_a_file_deletes_its_checkpoints(store: SwiftStore, raw: Connection) -> None:
    store.write("nb.ipynb", b"x")
    store.create_checkpoint("nb.ipynb")
    store.create_checkpoint("nb.ipynb")
    store.delete("nb.ipynb")
    assert names(raw, store.container) == []


def test_if_match_uses_swift_etags(store: SwiftStore) -> None:
    first = store.write("nb.ipynb", b"v1")
    assert store.write("nb.ipynb", b"v1").etag != first.etag  # same bytes, new version
    first = store.stat("nb.ipynb")
    second = store.write("nb.ipynb", b"v2", if_match=first.etag)
    with pytest.raises(Conflict):
        store.write("nb.ipynb", b"lost update", if_match=first.etag)
    assert store.write("nb.ipynb", b"v3", if_match=f'"{second.etag}"').etag.startswith(
        hashlib.md5(b"v3").hexdigest()
    )
    with pytest.raises(Conflict):
        store.write("new.ipynb", b"x", if_match=first.etag)  # nothing there matches nothing
    with pytest.raises(Conflict):
        store.delete("nb.ipynb", if_match=first.etag)
    with pytest.raises(Conflict):
        store.rename("nb.ipynb", "moved.ipynb", if_match=first.etag)
    assert store.read("nb.ipynb") == b"v3"


def test_listing_and_stat_agree(store: SwiftStore) -> None:
    store.write("a.txt", b"abc")
    (listed,) = store.list("")
    stat = store.stat("a.txt")
    assert (listed.path, listed.kind, listed.size, listed.etag, listed.last_modified) == (
        stat.path,
        stat.kind,
        stat.size,
        stat.etag,
        stat.last_modified,
    )


def test_streamed_download_matches_its_entry(store: SwiftStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    store.write("blob.bin", data)
    entry, chunks = store.open_stream("blob.bin", chunk_size=65536)
    received = b"".join(chunks)
    assert received == data
    assert entry.size == len(data) and entry.etag == store.stat("blob.bin").etag
    with pytest.raises(NotFound):
        store.open_stream("missing.bin")


def test_paths_too_long_for_swift_are_refused(store: SwiftStore) -> None:
    with pytest.raises(InvalidPath, match="too long for Swift"):
        store.write("x" * 1000, b"")


# ---------------------------------------------------------------------------- container


def test_the_container_is_created_on_first_use(store: SwiftStore, raw: Connection) -> None:
    with pytest.raises(Exception, match="404"):
        raw.head_container(store.container)
    assert store.list("") == []
    assert raw.head_container(store.container)["x-container-object-count"] == "0"


def test_a_missing_container_is_a_clear_error_when_creating_is_off(swift_options: dict[str, Any]) -> None:
    store = swift_store(**swift_options, create_container=False)
    with pytest.raises(Unavailable, match=f"container '{swift_options['container']}' does not exist"):
        store.list("")


def test_a_user_who_may_not_create_the_container_gets_a_clear_error(swift_options: dict[str, Any]) -> None:
    """tempauth's test:tester3 is not an account admin: Swift answers 403 to PUT container."""
    store = swift_store(**{**swift_options, "user": "test:tester3", "key": "testing3"})
    with pytest.raises(Unavailable) as caught:
        store.write("nb.ipynb", b"x")
    assert "may not create it (403 Forbidden)" in caught.value.message
    assert "test:tester3" in caught.value.message


def test_a_full_container_is_507_store_full(store: SwiftStore, raw: Connection) -> None:
    """Swift refuses a save past the container's quota (413): the store is full, nothing changes."""
    store.write("nb.ipynb", b"small")
    raw.post_container(store.container, {"X-Container-Meta-Quota-Bytes": "100"})
    with pytest.raises(StoreFull) as caught:
        store.write("nb.ipynb", b"x" * 1000)
    assert "Swift has no room for it (413" in caught.value.message
    assert store.read("nb.ipynb") == b"small"


def test_a_chunk_past_the_quota_fails_the_upload_until_chunk_one(store: SwiftStore, raw: Connection) -> None:
    """A segment Swift refuses (413) drops the upload and leaves its mark: the later chunks and
    the last one are refused, never joined without the lost chunk."""
    store.write("f.bin", b"old")
    raw.post_container(store.container, {"X-Container-Meta-Quota-Bytes": "1000"})
    store.stage_chunk("f.bin", 1, b"a" * 100)
    with pytest.raises(StoreFull):
        store.stage_chunk("f.bin", 2, b"b" * 2000)
    assert_refused_until_a_new_chunk_one(store, "f.bin", kept=b"old")
    assert names(raw, store.container) == ["f.bin"]


def test_the_log_in_examples_in_the_docs_are_valid_settings() -> None:
    """docs/stores.md's tempauth, Keystone v3 and Rackspace examples: each one builds a store
    (Keystone says it needs python-keystoneclient, which the tests do not install)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "stores.md").read_text()
    section = doc[doc.index("### Three ways to log in") : doc.index("### What is in the container")]
    examples = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    assert [example["store"].get("auth_version", 1) for example in examples] == [1, 3, 1]
    for example in examples:
        settings = load_settings(example, environ={})
        if example["store"].get("auth_version") == 3:
            with pytest.raises(ConfigError, match="needs python-keystoneclient"):
                open_store(settings.store)
        else:
            assert isinstance(open_store(settings.store), SwiftStore)


# ---------------------------------------------------------------------------- request economy


def test_a_notebook_save_costs_five_requests_new_and_four_existing(store: SwiftStore, monkeypatch) -> None:
    """Each Swift request is a round trip to a server that may be far away: a save of a new
    notebook is HEAD, listing (a folder there?), PUT, HEAD, COPY (its first checkpoint); of an
    existing one HEAD, PUT, HEAD, one-entry checkpoint listing (docs/stores.md)."""
    store.save("warm.ipynb", b"{}")  # the container and the token are made before counting
    made: list[str] = []
    real = Connection._retry

    def counted(self: Connection, reset: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(func.__name__)
        return real(self, reset, func, *args, **kwargs)

    monkeypatch.setattr(Connection, "_retry", counted)
    entry, new = store.save("n.ipynb", b"version 1")
    store.ensure_checkpoint("n.ipynb", single=True, new=new)
    assert new and made == ["head_object", "get_container", "put_object", "head_object", "copy_object"]
    made.clear()
    entry, new = store.save("n.ipynb", b"version 2")
    store.ensure_checkpoint("n.ipynb", single=True, new=new)
    assert not new and made == ["head_object", "put_object", "head_object", "get_container"]
    assert [c.id for c in store.list_checkpoints("n.ipynb")] == ["checkpoint"]
    assert store.read("n.ipynb") == b"version 2" and entry == store.stat("n.ipynb")
