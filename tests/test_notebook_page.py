"""The read-only notebook page: sources and outputs as text and images, never live HTML."""

from __future__ import annotations

import nbformat

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def notebook_with_outputs() -> dict:
    cell = nbformat.v4.new_code_cell("print('hi')\n1/0", execution_count=3)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hi\n"),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<script>alert(1)</script>", "text/plain": "<b>html</b>"}
        ),
        nbformat.v4.new_output(
            "error", ename="ZeroDivisionError", evalue="division by zero",
            traceback=["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
        ),
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), cell])


def test_notebook_page_shows_sources_and_outputs_without_running_them(client):
    body = {"type": "notebook", "content": notebook_with_outputs()}
    assert client.put("/api/contents/demo.ipynb", json=body).status_code == 201
    page = client.get("/notebooks/demo.ipynb")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "# Title" in html and "print(&#39;hi&#39;)" in html and "[3]" in html
    assert "hi\n</pre>" in html
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;b&gt;html&lt;/b&gt;" in html
    assert "ZeroDivisionError: division by zero" in html and "\x1b" not in html


def test_notebook_page_needs_login_and_an_existing_notebook(client, anonymous):
    assert anonymous.get("/notebooks/demo.ipynb").status_code == 302
    assert client.get("/notebooks/missing.ipynb").status_code == 404
    assert client.get("/notebooks/..%2Fescape.ipynb").status_code == 400
