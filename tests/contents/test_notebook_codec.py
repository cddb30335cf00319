"""Notebook bytes and nodes: nbflask reads, writes, validates and signs exactly as nbformat does.

The contents service does that work its own faster way (contents/notebooks.py,
validation.py, trust.py), so each test holds it to nbformat's own functions on the same
notebooks: the same stored bytes, the same nodes read, the same validation verdicts, the
same signatures (a notebook Jupyter trusts stays trusted).
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from nbflask.contents import notebooks
from nbflask.contents.trust import Notary, Trust
from nbflask.contents.validation import Validity


def rich_notebook(minor: int = 5) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
        tags=["a", 1, 2.5, True, None, {"nested": ["x", {"y": False}]}],
        title="Ünïcödé \u2028 line\tseparator \"quoted\" \\ back",
    )
    nb.cells.append(nbformat.v4.new_markdown_cell("# Title\n\nSome *text*\r\nwith CRLF\n"))
    code = nbformat.v4.new_code_cell("print('hi')\nx = 1\n", execution_count=3)
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hi\nthere\n"),
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": "1\n2", "application/json": {"a": [1, 2.0, None]}},
            execution_count=3,
        ),
        nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["line 1", "line 2"]),
    ]
    nb.cells.append(code)
    nb.cells.append(nbformat.v4.new_raw_cell("raw\n", metadata={"format": "text/plain"}))
    nb.cells.append(nbformat.v4.new_code_cell(""))
    data = json.loads(nbformat.writes(nb))
    if minor < 5:
        data["nbformat_minor"] = minor
        for cell in data["cells"]:
            del cell["id"]
    return data


def stored(nb: dict) -> bytes:
    """What nbformat writes to a file for `nb`."""
    return (nbformat.writes(nbformat.from_dict(nb)) + "\n").encode()


def without_ids(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell.pop("id", None)
    return nb


def with_duplicate_ids(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["id"] = "same"
    return nb


def with_unknown_key(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"][1]["colour"] = "red"
    return nb


SAVES = {
    "rich": rich_notebook(),
    "v4.4": rich_notebook(4),
    "empty": json.loads(nbformat.writes(nbformat.v4.new_notebook())),
    "invalid cell": with_unknown_key(rich_notebook()),
    "source as lines": json.loads(stored(rich_notebook())),
}


@pytest.mark.parametrize("name", sorted(SAVES))
def test_a_save_stores_what_nbformat_writes(name):
    content = SAVES[name]
    data, message = notebooks.Notebooks().dumps(notebooks.from_model(copy.deepcopy(content)))
    assert data == stored(content)
    assert (message is None) == nbformat.validator.isvalid(content)


def test_a_save_in_a_body_parsed_into_nodes_stores_the_same_bytes():
    original = rich_notebook()
    body = json.dumps({"type": "notebook", "content": original})
    content = json.loads(body, object_hook=notebooks.Node)["content"]
    assert notebooks.Notebooks().dumps(notebooks.from_model(content))[0] == stored(original)


@pytest.mark.parametrize("repair", [without_ids, with_duplicate_ids])
def test_a_save_repairs_cell_ids_as_nbformat_does(repair):
    data, message = notebooks.Notebooks().dumps(notebooks.from_model(repair(rich_notebook())))
    ids = [cell["id"] for cell in json.loads(data)["cells"]]
    assert len(set(ids)) == len(ids) == 4
    assert message is None


def test_validation_remembers_only_what_passed_and_under_which_schema():
    codec = notebooks.Notebooks()
    assert codec.dumps(notebooks.from_model(rich_notebook()))[1] is None
    # The same cells, one with a key the schema does not allow: found, and named as nbformat does.
    message = codec.dumps(notebooks.from_model(with_unknown_key(rich_notebook())))[1]
    assert message.startswith("Notebook validation failed") and "colour" in message
    # A cell valid in v4.5 (it has an id) is not valid in v4.4.
    as_v44 = rich_notebook()
    as_v44["nbformat_minor"] = 4
    assert "id" in codec.dumps(notebooks.from_model(as_v44))[1]
    # An invalid top level is found though every cell was seen valid.
    bad_top = rich_notebook()
    bad_top["metadata"]["kernelspec"] = "python3"
    assert "'python3' is not of type 'object'" in codec.dumps(notebooks.from_model(bad_top))[1]


def test_a_full_memory_is_forgotten_and_validation_still_holds():
    codec = notebooks.Notebooks(Validity(cells=3, documents=1))
    valid, invalid = rich_notebook(), with_unknown_key(rich_notebook())
    for _ in range(3):
        assert codec.dumps(notebooks.from_model(copy.deepcopy(valid)))[1] is None
        assert codec.dumps(notebooks.from_model(copy.deepcopy(invalid)))[1]
        assert codec.read(stored(valid), "a.ipynb")[1] is None
        assert codec.read(stored(invalid), "a.ipynb")[1]


READS = {
    **{name: stored(nb) for name, nb in SAVES.items()},
    "v4.5 without ids": json.dumps(without_ids(rich_notebook())).encode(),
    "duplicate ids": json.dumps(with_duplicate_ids(rich_notebook())).encode(),
    "v3": json.dumps({
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
        "worksheets": [{"cells": [{"cell_type": "code", "input": "1", "language": "python",
                                   "outputs": [], "metadata": {}}], "metadata": {}}],
    }).encode(),
    "transient keys": json.dumps({
        **rich_notebook(), "metadata": {"orig_nbformat": 3, "signature": "sha256:0"},
    }).encode(),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_a_read_gives_what_nbformat_reads(name):
    data = READS[name]
    codec = notebooks.Notebooks()
    for _ in range(2):  # the second read is remembered valid, or not, and must not differ
        nb, message = codec.read(data, "a.ipynb")
        expected = nbformat.reads(data, as_version=4)
        assert (message is None) == nbformat.validator.isvalid(expected)
        if name in ("v4.5 without ids", "duplicate ids", "v3"):  # given new random ids
            assert len({cell["id"] for cell in nb.cells}) == len(nb.cells)
            for cell in [*nb.cells, *expected.cells]:
                cell.pop("id")
        assert nb == expected


def test_a_read_of_what_nbflask_saved_is_valid_and_the_same_notebook():
    codec = notebooks.Notebooks()
    data, _ = codec.dumps(notebooks.from_model(rich_notebook()))
    assert codec.read(data, "a.ipynb") == (nbformat.reads(data, as_version=4), None)


SIGNED = [rich_notebook(), rich_notebook(4), with_unknown_key(rich_notebook()),
          {**rich_notebook(), "metadata": {"signature": "sha256:old", "n": 10**30}}]


@pytest.mark.parametrize("content", SIGNED)
def test_the_signature_is_nbformats(content, tmp_path):
    notary = Notary(data_dir=str(tmp_path), db_file=":memory:", secret=b"s" * 64)
    nb = nbformat.from_dict(content)
    assert notary.compute_signature(nb) == NotebookNotary.compute_signature(notary, nb)
    assert nb == nbformat.from_dict(content)


def test_a_notebook_trusted_by_jupyter_is_trusted_by_nbflask(tmp_path):
    trust = Trust(tmp_path)
    jupyter = NotebookNotary(data_dir=str(tmp_path), db_file=str(tmp_path / "nbsignatures.db"),
                             secret=trust.secret)
    nb = nbformat.from_dict(rich_notebook())
    jupyter.sign(nb)
    jupyter.close()
    trust.mark(nb)
    assert nb.cells[1].metadata.trusted is True
    nb.cells[1].outputs[0].text = "changed"
    trust.mark(nb)
    assert nb.cells[1].metadata.trusted is False
    trust.close()
