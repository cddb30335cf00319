"""The JSON of a large model made in pieces is byte for byte what one json.dumps makes."""

from __future__ import annotations

import json

import nbformat
import pytest

from nbflask import jsontext


def one_call(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def notebook_model() -> dict:
    nb = nbformat.v4.new_notebook(metadata={"language_info": {"name": "python"}})
    for number in range(50):
        cell = nbformat.v4.new_code_cell(f"print('é {number} \\U0001f600')", execution_count=number)
        cell.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": "iVBOR" * 500}))
        nb.cells.append(cell)
    return {"name": "a.ipynb", "path": "a.ipynb", "type": "notebook", "content": nb, "size": 10, "hash": None}


@pytest.mark.parametrize("value", [
    notebook_model(),
    {"type": "directory", "content": [{"name": f"f{n}", "size": n, "writable": True} for n in range(30)]},
    {"type": "file", "content": "é\u2028\x00\"\\ \U0001f600 long line\n" * 400, "format": "text"},
    {1: "a key that is not a string", "nested": {2.5: None}}, [], {}, "", [[[["deep"]]]],
])
def test_pieces_join_into_the_text_json_dumps_makes(value, monkeypatch):
    monkeypatch.setattr(jsontext, "STRING_PIECE", 7)  # cut every long string, mid-escape too
    for chunk in (1, 100, 1 << 20):
        chunks = jsontext.compact_chunks(value, chunk)
        assert "".join(chunks) == one_call(value) == jsontext.compact(value)
        assert all(len(piece) >= chunk for piece in chunks[:-1])
