"""CPU-heavy requests run off the gevent loop of a real `nbflask run`.

One OS thread serves every client, so a request that parses a large body on it freezes them
all (a 1 MiB JSON5 settings save froze the server for seconds). The server runs here with
gevent's own monitor, which prints the loop thread's stack whenever one greenlet keeps the
loop longer than GEVENT_MAX_BLOCKING_TIME; no such report may show the parsing, validation,
signing or serialising of a settings document, a notebook or a large folder's listing on the
loop. How long the loop
stalled, before and after, is measured in benchmarks/loop_stall.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from live import own_folders, start_nbflask

pytestmark = pytest.mark.slow

SHORTCUTS = "@jupyterlab/shortcuts-extension:shortcuts"
MONITOR = {"GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": "0.05"}
REPORT = "appears to be blocked"
BLOCKED_STACK, INFO = "Blocked Stack", "\nInfo:"
# Frames of the heavy work: found in a report, it ran on the loop. Not the json module's own
# files, nor the functions that also serve small documents on the loop (a single model, a
# small reply): a loaded machine may pause the process there past the threshold.
HEAVY_FRAMES = (
    "json5/", "jsonschema/", "nbformat/", "fastjsonschema",
    "nbflask/contents/notebooks.py", "nbflask/contents/validation.py", "nbflask/contents/trust.py",
    "in parse_overrides", "in checked_overrides", "in read_overrides", "in _parse", "in _models",
    "in compact_chunks",
)
FOLDER_ENTRIES = 20_000


def shortcuts_json5(count: int, command: str) -> str:
    """User shortcuts as JSON5 with comments (so only the slow JSON5 parser reads them)."""
    entry = f'    // shortcut\n    {{command: "{command}", keys: ["Accel K"], selector: "body"}},\n'
    return "{\n  shortcuts: [\n" + entry * count + "  ]\n}\n"


def big_notebook(cells: int = 2000) -> dict:
    """About 4.5 MB: every cell different, with a stream output."""
    nb = nbformat.v4.new_notebook()
    for number in range(cells):
        cell = nbformat.v4.new_code_cell(f"value_{number} = compute({number})\n" + "# pad\n" * 150)
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=f"{number}\n" * 400))
        nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


def blocked_stacks(log: str) -> list[str]:
    """The stack of the blocked thread in each of gevent's reports; the threads and greenlets
    listed after it under "Info:" are not blocked (the pool's threads among them)."""
    return [part.split(BLOCKED_STACK, 1)[-1].split(INFO, 1)[0] for part in log.split(REPORT)[1:]]


def test_big_settings_and_notebooks_are_parsed_off_the_loop(tmp_path: Path):
    env = {**own_folders(tmp_path), **MONITOR}
    with start_nbflask(tmp_path, env=env) as server:
        session = server.session()
        lab = server.url + f"lab/api/settings/{SHORTCUTS}"
        saved = session.put(lab, json={"raw": shortcuts_json5(1500, "notebook:run-cell")}, timeout=120)
        assert saved.status_code == 204, saved.text

        # Another web host saves a version this one has never parsed; a page load lists it.
        stored = Path(env["NBFLASK_DATA_DIR"]) / "frontend" / "settings" / quote(SHORTCUTS, safe="")
        stored.write_text(shortcuts_json5(1500, "notebook:run-all-cells"), encoding="utf-8")
        listing = session.get(server.url + "lab/api/settings", timeout=120).json()["settings"]
        shortcuts = next(entry for entry in listing if entry["id"] == SHORTCUTS)["settings"]["shortcuts"]
        assert len(shortcuts) == 1500 and shortcuts[0]["command"] == "notebook:run-all-cells"

        nb = big_notebook()
        url = server.url + "api/contents/big.ipynb"
        assert session.put(url, json={"type": "notebook", "content": nb}, timeout=120).status_code == 201
        read = session.get(url, timeout=120).json()["content"]
        assert [cell["source"] for cell in read["cells"]] == ["".join(cell["source"]) for cell in nb["cells"]]

        folder = tmp_path / "notebooks" / "many"
        folder.mkdir()
        for number in range(FOLDER_ENTRIES):
            (folder / f"{number:05}.txt").touch()
        listing = session.get(server.url + "api/contents/many", timeout=120).json()["content"]
        assert sorted(entry["name"] for entry in listing)[-1] == f"{FOLDER_ENTRIES - 1:05}.txt"

        server.stop()
        stacks = blocked_stacks(server.log())
    on_loop = [stack for stack in stacks if any(frame in stack for frame in HEAVY_FRAMES)]
    assert not on_loop, f"{len(on_loop)} of {len(stacks)} stall reports show heavy work:\n{on_loop[0]}"


def test_a_settings_save_over_the_limit_is_413_before_it_is_read(tmp_path: Path):
    """Over a real socket: the server refuses the body by its Content-Length (a chunked one
    once read) and the client still reads the JSON answer; what was saved stays."""
    with start_nbflask(tmp_path, env=own_folders(tmp_path)) as server:
        session = server.session()
        lab = server.url + f"lab/api/settings/{SHORTCUTS}"
        kept = shortcuts_json5(2, "notebook:run-cell")
        assert session.put(lab, json={"raw": kept}, timeout=30).status_code == 204
        body = json.dumps({"raw": shortcuts_json5(12_000, "notebook:run-all-cells")}).encode()
        chunked = (body[start:start + 65536] for start in range(0, len(body), 65536))
        for data in (body, chunked):  # with a Content-Length, then without one
            huge = session.put(lab, data=data, headers={"Content-Type": "application/json"}, timeout=30)
            assert huge.status_code == 413 and set(huge.json()) == {"message", "reason"}
            assert "too large: the limit is" in huge.json()["message"]
        assert session.get(lab, timeout=30).json()["raw"] == kept
