"""What only the file store does: its layout on disk, and never leaving its root."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from nbflask.config import ConfigError, StoreSettings
from nbflask.stores import open_store, store_class
from nbflask.stores.base import InvalidPath, NotFound, Store
from nbflask.stores.file import CHECKPOINT_DIR, FileStore
from nbflask.stores.memory import MemoryStore


@pytest.fixture
def tree(tmp_path):
    """A root folder, and a secret beside it that no path may reach."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text("outside")
    return root


@pytest.fixture
def store(tree):
    return FileStore(root_dir=str(tree))


def test_checkpoints_live_beside_the_file_and_stay_invisible(store, tree):
    store.mkdir("sub")
    store.write("sub/n.ipynb", b"{}")
    checkpoint = store.create_checkpoint("sub/n.ipynb")
    files = os.listdir(tree / "sub" / CHECKPOINT_DIR)
    assert files == [f"n-checkpoint-{checkpoint.id}.ipynb"]
    assert [e.name for e in store.list("sub")] == ["n.ipynb"]
    with pytest.raises(NotFound):
        store.stat(f"sub/{CHECKPOINT_DIR}")
    with pytest.raises(NotFound):
        store.write(f"sub/{CHECKPOINT_DIR}/evil.ipynb", b"x")


def test_the_single_checkpoint_has_jupyter_s_name_so_both_servers_share_it(store, tree):
    store.write("n.ipynb", b"{}")
    store.create_checkpoint("n.ipynb", single=True)
    assert os.listdir(tree / CHECKPOINT_DIR) == ["n-checkpoint.ipynb"]
    (tree / CHECKPOINT_DIR / "n-checkpoint.ipynb").write_bytes(b"written by Jupyter")
    store.restore_checkpoint("n.ipynb", "checkpoint")
    assert store.read("n.ipynb") == b"written by Jupyter"
    store.write("n-checkpoint.ipynb", b"a file whose name looks like a checkpoint")
    assert store.list_checkpoints("n-checkpoint.ipynb") == []


def test_an_upload_in_progress_is_a_hidden_staging_file_swept_when_abandoned(store, tree):
    store.write("big.bin", b"old")
    store.stage_chunk("big.bin", 1, b"chunk")
    (staging,) = [name for name in os.listdir(tree) if name != "big.bin"]
    assert staging.startswith(".~nbflask-upload-")
    assert [e.name for e in store.list("")] == ["big.bin"]
    with pytest.raises(NotFound):
        store.read(staging)
    old = time.time() - 2 * 3600
    os.utime(tree / staging, (old, old))
    store.list("")
    assert os.listdir(tree) == ["big.bin"]
    assert store.read("big.bin") == b"old"


def test_deleting_a_folder_removes_links_in_it_not_what_they_point_to(store, tree, tmp_path):
    store.mkdir("d")
    store.write("d/a.txt", b"a")
    os.symlink(tmp_path / "outside", tree / "d" / "out")
    store.delete("d")
    assert not (tree / "d").exists()
    assert os.listdir(tmp_path / "outside") == ["x.txt"]


def test_real_path_follows_links_inside_the_root(store, tree):
    os.mkdir(tree / ".hidden")
    (tree / ".hidden" / "x.txt").write_text("x")
    os.symlink(".hidden", tree / "link")
    assert store.real_path("link/x.txt") == ".hidden/x.txt"
    assert store.real_path("") == ""
    assert store.real_path("plain.txt") == "plain.txt"


def test_a_folder_holding_only_checkpoints_counts_as_empty(store, tree):
    store.mkdir("d")
    store.write("d/n.ipynb", b"{}")
    store.create_checkpoint("d/n.ipynb")
    os.unlink(tree / "d" / "n.ipynb")
    store.delete("d")
    assert not (tree / "d").exists()


def test_saves_leave_no_temporary_files_and_keep_the_mode(store, tree):
    store.write("m.txt", b"1")
    os.chmod(tree / "m.txt", 0o640)
    store.write("m.txt", b"2")
    assert os.listdir(tree) == ["m.txt"]
    assert stat.S_IMODE(os.stat(tree / "m.txt").st_mode) == 0o640


def test_leftover_temporary_files_are_never_listed(store, tree):
    (tree / ".~nbflask-0123-n.ipynb").write_bytes(b"half a save")
    assert store.list("") == []
    with pytest.raises(NotFound):
        store.read(".~nbflask-0123-n.ipynb")


def test_symlinks_out_of_the_root_are_refused_and_untouched(store, tree, tmp_path):
    os.symlink(tmp_path / "secret.txt", tree / "leak.txt")
    os.symlink(tmp_path / "outside", tree / "leakdir")
    os.symlink(tmp_path / "nowhere", tree / "dangling")
    assert store.list("") == []
    for path in ("leak.txt", "leakdir", "leakdir/x.txt", "leakdir/new.txt"):
        with pytest.raises(NotFound):
            store.stat(path)
        with pytest.raises(NotFound):
            store.write(path, b"overwrite")
        with pytest.raises(NotFound):
            store.delete(path)
    with pytest.raises(NotFound):
        store.rename("leak.txt", "mine.txt")
    with pytest.raises(NotFound):
        store.read("leak.txt")
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    assert os.listdir(tmp_path / "outside") == ["x.txt"]
    assert os.path.islink(tree / "leak.txt")


def test_symlinks_inside_the_root_work(store, tree):
    store.mkdir("real")
    store.write("real/a.txt", b"a")
    os.symlink(tree / "real", tree / "alias")
    assert store.read("alias/a.txt") == b"a"
    assert {e.name for e in store.list("")} == {"real", "alias"}


def test_special_files_are_neither_listed_nor_read(store, tree):
    os.mkfifo(tree / "pipe")
    assert store.list("") == []
    with pytest.raises(NotFound):
        store.read("pipe")


def test_root_cannot_be_deleted_or_overwritten(store):
    with pytest.raises(InvalidPath):
        store.delete("")
    with pytest.raises(InvalidPath):
        store.write("", b"x")


def test_constructor_refuses_bad_options(tmp_path):
    with pytest.raises(ValueError, match="root_dir"):
        FileStore(root_dir=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unknown option"):
        FileStore(root_dir=str(tmp_path), colour="blue")
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryStore(max_bytes=-1)


class NotAStore:
    pass


class HalfAStore(Store):
    def stat(self, path):
        raise NotFound(path)


def test_store_selection_by_name_and_dotted_path(tmp_path):
    assert store_class("file") is FileStore
    assert store_class("memory") is MemoryStore
    assert store_class("nbflask.stores.memory:MemoryStore") is MemoryStore
    opened = open_store(StoreSettings(class_name="file", root_dir=str(tmp_path)))
    assert isinstance(opened, FileStore) and opened.describe() == os.path.realpath(tmp_path)
    assert isinstance(open_store(StoreSettings(class_name="memory", root_dir="/nonexistent")), MemoryStore)


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("filez", {}, "expected file, memory, swift or package.module:Class, found 'filez'"),
        ("no_such_module:Store", {}, "cannot import 'no_such_module'"),
        ("test_store_file:NotAStore", {}, "is not a store"),
        ("test_store_file:HalfAStore", {}, "missing commit_upload, create_checkpoint"),
        ("file", {"colour": "blue"}, "store (file): unknown option(s) for store 'file': colour"),
        ("memory", {"max_bytes": "lots"}, "store (memory): max_bytes: expected a positive integer"),
    ],
)
def test_bad_store_config_is_one_clear_line(tmp_path, name, options, expected):
    with pytest.raises(ConfigError) as caught:
        open_store(StoreSettings(class_name=name, root_dir=str(tmp_path), options=options), "deploy.yaml")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_names_the_api_cannot_address_are_skipped(store, tree):
    (tree / "back\\slash.txt").write_text("x")
    os.close(os.open(os.path.join(os.fsencode(tree), b"latin1-\xe9.txt"), os.O_CREAT | os.O_WRONLY, 0o600))
    (tree / "fine.txt").write_text("ok")
    assert [entry.name for entry in store.list("")] == ["fine.txt"]


def test_symlink_loops_are_not_found(store, tree):
    os.symlink(tree / "loop", tree / "loop")
    assert store.list("") == []
    with pytest.raises(NotFound):
        store.read("loop")


def test_a_bad_store_stops_the_app_at_start_up(make_app):
    with pytest.raises(ConfigError, match="store.class"):
        make_app({"store": {"class": "nosuch.module:Store"}})
    with pytest.raises(ConfigError, match="store.max_checkpoints: expected 1 or more"):
        make_app({"store": {"max_checkpoints": 0}})


def test_names_up_to_the_file_system_limit_save_atomically(store, tree):
    name = "é" * 120 + ".ipynb"  # 246 bytes in UTF-8
    store.write(name, b"{}")
    store.write(name, b"{ }")
    assert store.read(name) == b"{ }"
    assert os.listdir(tree) == [name]


def test_temp_files_of_dead_saves_are_swept_when_old(store, tree):
    old, fresh = tree / ".~nbflask-dead.tmp", tree / ".~nbflask-live.tmp"
    old.write_bytes(b"half a save")
    fresh.write_bytes(b"a save in progress")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    assert store.list("") == []
    assert not old.exists()
    assert fresh.exists()


#: Runs the store as an ordinary user would: root without the capabilities that pass over
#: file modes (tests run as root, which may write to a read-only file).
AS_A_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]

UPLOAD_OVER_A_READ_ONLY_FILE = """
import os, stat, sys
from nbflask.stores.base import PermissionDenied
from nbflask.stores.file import FileStore

root = sys.argv[1]
store = FileStore(root_dir=root)
store.write("ro.txt", b"old")
os.chmod(os.path.join(root, "ro.txt"), 0o444)
try:
    open(os.path.join(root, "ro.txt"), "w")
except PermissionError:
    pass
else:
    sys.exit("the file modes are passed over: not an ordinary user")
for number, chunk in ((1, b"one "), (2, b"two ")):
    try:
        store.stage_chunk("ro.txt", number, chunk)
    except PermissionDenied as exc:
        sys.exit(f"chunk {number}: {exc.message}")
store.commit_upload("ro.txt", b"last")
print(store.read("ro.txt").decode(), oct(stat.S_IMODE(os.stat(os.path.join(root, "ro.txt")).st_mode)))
print(sorted(os.listdir(root)))
"""


@pytest.mark.slow
def test_a_chunked_upload_over_a_read_only_file_works_as_a_plain_save_does(tree):
    """The staging file had the read-only mode from chunk 1, so chunk 2 could not open it
    (403, and a 0444 staging file left behind); the mode is the file's once installed."""
    result = subprocess.run(
        [*AS_A_USER, sys.executable, "-c", UPLOAD_OVER_A_READ_ONLY_FILE, str(tree)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["one two last 0o444", "['ro.txt']"]
