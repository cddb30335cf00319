"""Outputs recorded from iopub messages come out as JupyterLab would show them, in nbformat."""

from __future__ import annotations

import nbformat
import pytest

from nbflask.kernels.outputs import Recording, apply_controls


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
    recording = Recording(max_bytes=4000, max_age=3600, max_stream=10_000)
    record(recording, "running", ("execute_input", {"execution_count": 1}),
           ("stream", {"name": "stdout", "text": "x" * 1000}))
    for n in range(10):
        record(recording, f"done-{n}", ("execute_input", {"execution_count": n + 2}),
               ("stream", {"name": "stdout", "text": "y" * 1000}), ("status", {"execution_state": "idle"}))
    assert "running" in recording.executions
    assert "done-9" in recording.executions and "done-0" not in recording.executions
    assert recording.size <= 4000 + 1100
    assert recording.dropped >= 6
