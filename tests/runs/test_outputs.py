"""Outputs recorded from iopub messages come out as JupyterLab would show them, in nbformat."""

from __future__ import annotations

import json
import tracemalloc
import uuid

import nbformat
import pytest
from runevents import follow

from nbflask.host.outputs import Execution
from nbflask.host.recording import Recording
from nbflask.host.streams import apply_controls


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain\ntext\n", "plain\ntext\n"),
    ("10%\r50%\r100%\n", "100%\n"),
    ("loading...\rdone\n", "doneing...\n"),
    ("abc\b\bX\n", "aXc\n"),
    ("windows\r\nline\r\n", "windows\nline\n"),
    ("\b\bstart", "start"),
])
def test_carriage_returns_and_backspaces_apply_as_in_a_terminal(raw, shown):
    assert apply_controls(raw) == shown


def test_a_progress_bar_written_in_many_messages_ends_as_its_last_state():
    recording = fresh()
    record(recording, "r", ("execute_input", {"execution_count": 1}),
           ("stream", {"name": "stdout", "text": "start\n"}),
           *[("stream", {"name": "stdout", "text": f"\r{n:3}%"}) for n in range(0, 101, 10)],
           ("stream", {"name": "stdout", "text": "\ndone\n"}))
    assert recording.executions["r"].notebook_outputs()[0]["text"] == "start\n100%\ndone\n"


def record(recording: Recording, parent: str, *messages: tuple[str, dict]) -> None:
    for msg_type, content in messages:
        recording.apply(msg_type, parent, content)


def fresh() -> Recording:
    return Recording(max_bytes=1 << 20, max_age=3600, max_stream=1000)


def test_an_execution_becomes_valid_notebook_outputs():
    recording = fresh()
    recording.expect("req-1", "cell-a", "nb.ipynb")
    record(recording, "req-1",
           ("status", {"execution_state": "busy"}),
           ("execute_input", {"code": "x", "execution_count": 7}),
           ("stream", {"name": "stdout", "text": "a\n"}),
           ("stream", {"name": "stdout", "text": "b\n"}),
           ("stream", {"name": "stderr", "text": "warn\n"}),
           ("stream", {"name": "stdout", "text": "c\n"}),
           ("display_data", {"data": {"text/plain": "shown"}, "metadata": {}}),
           ("execute_result", {"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 7}),
           ("status", {"execution_state": "idle"}))
    execution = recording.executions["req-1"]
    model = execution.model()
    assert (model["cell_id"], model["path"], model["execution_count"], model["status"]) == \
        ("cell-a", "nb.ipynb", 7, "ok")
    assert [o["output_type"] for o in model["outputs"]] == \
        ["stream", "stream", "stream", "display_data", "execute_result"]
    assert model["outputs"][0]["text"] == "a\nb\n"
    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.from_dict(o) for o in model["outputs"]],
                                     execution_count=7)
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    assert recording.running() == []


def test_clear_output_at_once_and_with_wait():
    recording = fresh()
    record(recording, "r", ("execute_input", {"execution_count": 1}),
           ("stream", {"name": "stdout", "text": "old\n"}),
           ("clear_output", {"wait": True}))
    assert [o["text"] for o in recording.executions["r"].notebook_outputs()] == ["old\n"]  # still shown
    record(recording, "r", ("stream", {"name": "stdout", "text": "new\n"}))
    assert [o["text"] for o in recording.executions["r"].notebook_outputs()] == ["new\n"]
    record(recording, "r", ("clear_output", {"wait": False}))
    assert recording.executions["r"].outputs == []


def test_update_display_data_reaches_the_display_in_an_earlier_cell():
    recording = fresh()
    record(recording, "first", ("execute_input", {"execution_count": 1}),
           ("display_data", {"data": {"text/plain": "0%"}, "metadata": {},
                             "transient": {"display_id": "bar"}}),
           ("status", {"execution_state": "idle"}))
    record(recording, "second", ("execute_input", {"execution_count": 2}),
           ("update_display_data", {"data": {"text/plain": "100%"}, "metadata": {},
                                    "transient": {"display_id": "bar"}}))
    assert recording.executions["first"].outputs[0]["data"] == {"text/plain": "100%"}
    assert recording.executions["second"].outputs == []


def test_errors_and_replies_set_the_status():
    recording = fresh()
    record(recording, "r", ("execute_input", {"execution_count": 3}),
           ("error", {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["tb"]}),
           ("status", {"execution_state": "idle"}))
    assert recording.executions["r"].status == "error"
    assert recording.executions["r"].outputs[0]["ename"] == "ZeroDivisionError"
    version = recording.executions["r"].changes
    recording.finish("r", "error")  # the reply agrees with what iopub said: nothing new
    assert recording.executions["r"].changes == version
    recording.expect("s", None, None)
    recording.finish("s", "aborted")
    assert recording.executions["s"].status == "aborted"


def test_messages_of_no_execution_are_not_recorded():
    recording = fresh()
    record(recording, "info", ("status", {"execution_state": "busy"}),
           ("stream", {"name": "stdout", "text": "from a comm\n"}))
    assert recording.executions == {}


def test_a_huge_stream_keeps_its_newest_part_and_says_what_was_cut():
    recording = Recording(max_bytes=1 << 20, max_age=3600, max_stream=100)
    record(recording, "r", ("execute_input", {"execution_count": 1}),
           *[("stream", {"name": "stdout", "text": f"line {i:04}\n"}) for i in range(100)],
           ("stream", {"name": "stdout", "text": "tail"}))
    execution = recording.executions["r"]
    text = execution.notebook_outputs()[0]["text"]
    note, kept = text.split("\n", 1)
    assert kept.endswith("line 0099\ntail") and kept.startswith("line 0091\n")  # whole lines
    assert note == "[nbflask: 910 earlier characters of this stream were dropped]"


def test_old_executions_go_first_once_the_recording_is_full_but_a_running_one_stays():
    recording = Recording(max_bytes=20_000, max_age=3600, max_stream=10_000)
    record(recording, "running", ("execute_input", {"execution_count": 1}),
           ("stream", {"name": "stdout", "text": "x" * 1000}))
    for n in range(20):
        record(recording, f"done-{n}", ("execute_input", {"execution_count": n + 2}),
               ("stream", {"name": "stdout", "text": "y" * 1000}), ("status", {"execution_state": "idle"}))
    assert "running" in recording.executions
    assert "done-19" in recording.executions and "done-0" not in recording.executions
    assert recording.size <= 20_000
    assert recording.size == sum(execution.size for execution in recording.executions.values())
    assert recording.dropped >= 10


def raw(name: str, text: str, compact: bool = False) -> bytes:
    """A stream message's content as jupyter_client serialises it (or as orjson would)."""
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps({"name": name, "text": text}, ensure_ascii=False, separators=separators).encode()


def test_streams_taken_unparsed_come_out_as_parsed_ones():
    messages = [("stdout", "a\n"), ("stdout", "10%"), ("stdout", "\r50%"), ("stderr", "warn é\n"),
                ("stdout", "\r100%\n"), ("stdout", "tab\tquote\" back\\slash\n")]
    parsed, unparsed = fresh(), fresh()
    for recording in (parsed, unparsed):
        recording.apply("execute_input", "r", {"execution_count": 1})
    for index, (name, text) in enumerate(messages):
        parsed.apply("stream", "r", {"name": name, "text": text})
        assert unparsed.apply_stream("r", raw(name, text, compact=index % 2 == 1)) is not None
    assert unparsed.executions["r"].notebook_outputs() == parsed.executions["r"].notebook_outputs()
    assert [o["name"] for o in parsed.executions["r"].notebook_outputs()] == ["stdout", "stderr", "stdout"]
    assert unparsed.apply_stream("not-a-run", raw("stdout", "x")) is None
    assert unparsed.apply_stream("r", b"{not json") is None


def test_a_huge_unparsed_stream_stays_bounded_and_says_about_how_much_was_cut():
    recording = Recording(max_bytes=1 << 30, max_age=3600, max_stream=10_000)
    recording.apply("execute_input", "r", {"execution_count": 1})
    line = "y" * 999 + "\n"
    for _ in range(2000):  # 2 MB of text through a 10,000 character stream
        recording.apply_stream("r", raw("stdout", line))
    stream = recording.executions["r"].outputs[0]["text"]
    assert stream.raw_bytes < 100_000  # dropped unparsed, not kept
    note, kept = recording.executions["r"].notebook_outputs()[0]["text"].split("\n", 1)
    assert kept == line * 10
    cut = int(note.split("about ")[1].split()[0])
    assert abs(cut - 1_990_000) < 20_000  # 1,990,000 characters, counted from their bytes
    assert recording.size < 100_000


def test_many_tiny_unparsed_messages_are_parsed_before_they_pile_up():
    recording = Recording(max_bytes=1 << 30, max_age=3600, max_stream=1000)
    recording.apply("execute_input", "r", {"execution_count": 1})
    for _ in range(100_000):
        recording.apply_stream("r", raw("stdout", "."))
    stream = recording.executions["r"].outputs[0]["text"]
    assert stream.raw_bytes <= 8 * 1000 + 65536 and stream.length <= 1000
    assert recording.executions["r"].notebook_outputs()[0]["text"].endswith("." * 1000)


def ended_run(recording: Recording, msg_id: str, cell_id: str | None, outputs: str = "") -> None:
    """A run as the host records one from a notebook: the relay's notice, then iopub."""
    recording.expect(msg_id, cell_id, None)
    recording.apply("execute_input", msg_id, {"code": "pass", "execution_count": 1})
    if outputs == "display":
        recording.apply("display_data", msg_id, json.loads('{"data": {"text/plain": "1"}, "metadata": {}}'))
    elif outputs == "stream":
        recording.apply_stream(msg_id, raw("stdout", "hi\n"))
    recording.apply("status", msg_id, {"execution_state": "idle"})
    recording.finish(msg_id, "ok")


@pytest.mark.parametrize("outputs", ["none", "display", "stream"])
def test_what_the_recording_counts_is_at_least_what_its_runs_take(outputs):
    """The bound counts a run's whole cost (its records, ids, code), not only its outputs'
    text: measured with tracemalloc, ids and all, the host holds no more than it counts."""
    recording = Recording(max_bytes=1 << 40, max_age=3600, max_stream=1000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(2000):
            ended_run(recording, f"{uuid.uuid4().hex}_{n}", str(uuid.uuid4()), outputs)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= recording.size <= 2 * held


def test_thousands_of_runs_without_output_stay_within_the_bound():
    recording = Recording(max_bytes=64 * 1024, max_age=3600, max_stream=1000)
    for n in range(6000):
        ended_run(recording, f"run-{n}", f"cell-{n}")
    assert recording.size <= 64 * 1024
    assert len(recording.executions) <= 64 * 1024 // 600  # a run takes 650 bytes of the host, ids apart
    assert recording.dropped == 6000 - len(recording.executions)
    assert "run-5999" in recording.executions


def test_a_follower_rebuilds_the_run_from_its_changes_alone():
    """Applied in order, the changes give the run exactly, through everything that rewrites
    outputs: carriage returns, cut streams, clear_output (at once and with wait), display
    updates of earlier outputs, errors; and each costs what changed, not the run so far."""
    recording = Recording(max_bytes=1 << 30, max_age=3600, max_stream=300)
    recording.apply("execute_input", "r", {"code": "x", "execution_count": 1})
    execution = recording.executions["r"]
    view, cursor = execution.model(), execution.cursor()
    messages = [("stream", {"name": "stdout", "text": f"line {n}\n"}) for n in range(5)]
    messages += [("stream", {"name": "stdout", "text": f"\r{n}%"}) for n in range(0, 101, 20)]
    messages += [("display_data", {"data": {"text/plain": "bar 0"}, "metadata": {},
                                   "transient": {"display_id": "b"}}),
                 ("stream", {"name": "stderr", "text": "warn\n"}),
                 ("update_display_data", {"data": {"text/plain": "bar 1"}, "metadata": {},
                                          "transient": {"display_id": "b"}}),
                 ("stream", {"name": "stderr", "text": "more\n"}),
                 ("clear_output", {"wait": True}),
                 ("stream", {"name": "stdout", "text": "after the clear\n"}),
                 *[("stream", {"name": "stdout", "text": f"long line {n:03} " * 3 + "\n"})
                   for n in range(40)],
                 ("clear_output", {"wait": False}),
                 ("execute_result", {"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 1}),
                 ("error", {"ename": "E", "evalue": "v", "traceback": ["tb"]}),
                 ("status", {"execution_state": "idle"})]
    for number, (msg_type, content) in enumerate(messages):
        if msg_type == "stream" and number % 2:
            recording.apply_stream("r", raw(content["name"], content["text"]))
        else:
            recording.apply(msg_type, "r", content)
        change, cursor = execution.delta(cursor)
        view = follow(view, change)
        assert view["outputs"] == execution.notebook_outputs(), (number, msg_type)
        assert (view["status"], view["execution_count"]) == (execution.status, execution.execution_count)
        assert len(json.dumps(change)) < 700  # what changed: a line, an output, never the whole run
    assert view["status"] == "error"


def test_growing_stream_changes_carry_only_the_new_text():
    execution = Execution("r")
    view, cursor = execution.model(), execution.cursor()
    sent = 0
    for n in range(2000):
        execution.add({"output_type": "stream", "name": "stdout", "text": f"{n:09}\n"}, None, 1_000_000)
        change, cursor = execution.delta(cursor)
        sent += len(json.dumps(change))
        view = follow(view, change)
    assert view["outputs"] == execution.notebook_outputs()
    assert sent < 2000 * 200  # 10 characters each, and a few fields; the whole run each time was 10 MB


def test_runs_end_when_their_kernel_goes_and_say_why():
    recording = fresh()
    recording.expect("queued", None, None)
    record(recording, "going", ("execute_input", {"execution_count": 1}),
           ("stream", {"name": "stdout", "text": "half\n"}))
    record(recording, "over", ("execute_input", {"execution_count": 2}),
           ("status", {"execution_state": "idle"}))
    ended = recording.end_running("error", "the kernel died: it was killed")
    assert sorted(execution.msg_id for execution in ended) == ["going", "queued"]
    assert all(execution.ended_at is not None for execution in ended)
    model = recording.executions["going"].model()
    assert (model["status"], model["reason"]) == ("error", "the kernel died: it was killed")
    assert model["outputs"][0]["text"] == "half\n"
    assert recording.executions["over"].model()["reason"] is None
    recording.finish("going", "ok")  # a late reply does not undo it
    assert recording.executions["going"].status == "error"


def test_runs_that_ended_first_go_first_and_queued_runs_stay():
    """Cells queued behind a long one are running (expected, not yet begun) and stay; of the
    ended runs, those that ended first are let go first, whenever they started."""
    recording = Recording(max_bytes=64 * 1024, max_age=3600, max_stream=1000)
    recording.expect("long", "cell-long", None)
    recording.apply("execute_input", "long", {"code": "slow()", "execution_count": 1})
    for n in range(50):
        recording.expect(f"queued-{n}", f"cell-{n}", None)
    for n in range(500):
        ended_run(recording, f"quick-{n}", f"cell-quick-{n}")
    recording.apply("status", "long", {"execution_state": "idle"})  # ends last
    kept = list(recording.executions)
    assert [msg_id for msg_id in kept if msg_id.startswith("queued")] == [f"queued-{n}" for n in range(50)]
    quick = [msg_id for msg_id in kept if msg_id.startswith("quick")]
    assert "long" in kept and quick and quick[-1] == "quick-499" and "quick-0" not in kept
    assert recording.size == sum(execution.size for execution in recording.executions.values())
    assert recording.size <= 64 * 1024 and recording.dropped == 500 - len(quick)
