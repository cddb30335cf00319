"""The code's shape, where it matters at run time: what each process loads, who talks to whom."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

import nbflask
from nbflask import runtime
from nbflask.config import load_settings
from nbflask.host.server import HostServer
from nbflask.host_client import HostClient
from nbflask.protocol import host_api, operations

WEB_STACK = ("flask", "werkzeug", "jinja2", "simple_websocket", "wsproto")


def loaded_modules(code: str) -> set[str]:
    """Top-level packages loaded by a fresh interpreter after running `code`."""
    script = code + "\nimport sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_kernel_host_process_loads_no_web_stack(tmp_path):
    config = {"store": {"root_dir": str(tmp_path)}}
    loaded = loaded_modules(
        "from gevent import monkey; monkey.patch_all()\n"
        "from nbflask import host_client\nfrom nbflask.config import load_settings\n"
        "from nbflask.host import server as host\n"
        f"host.HostServer(load_settings(host_client.host_config(load_settings({config!r}, environ={{}})),"
        " environ={}), None)\n"
    )
    assert not loaded & set(WEB_STACK), loaded & set(WEB_STACK)


def imported_packages(folder: str) -> dict[str, set[str]]:
    """For each module under nbflask/`folder`, the nbflask modules it imports (absolute names)."""
    package_root = Path(nbflask.__file__).parent
    found: dict[str, set[str]] = {}
    for path in (package_root / folder).rglob("*.py"):
        module = "nbflask." + ".".join(path.relative_to(package_root).with_suffix("").parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                names.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[module] = {name for name in names if name.startswith("nbflask.")}
    return found


def test_the_folders_keep_to_their_process():
    """host/ runs only in the kernel host, relays/ only in web workers, protocol/ in both."""
    worker_only = ("nbflask.relays", "nbflask.blueprints", "nbflask.websocket", "nbflask.host_client",
                   "nbflask.app", "nbflask.frontend", "nbflask.state")
    rules = {"host": worker_only, "protocol": (*worker_only, "nbflask.host."), "relays": ("nbflask.host.",)}
    for folder, forbidden in rules.items():
        for module, names in imported_packages(folder).items():
            wrong = sorted(name for name in names if name.startswith(forbidden))
            assert not wrong, f"{module} ({folder}/) imports {wrong}"


def test_blueprints_do_not_import_the_app_factory():
    loaded = loaded_modules(
        "import sys\n"
        "from nbflask.blueprints import api, auth, contents, files, kernels, kernelspecs, sessions\n"
        "assert 'nbflask.app' not in sys.modules, 'a blueprint imported nbflask.app'\n"
    )
    assert "nbflask" in loaded


def shape(method) -> tuple:
    """A method's parameters (name, kind, default, resolved type) after `self`, and its result type."""
    hints = typing.get_type_hints(method, include_extras=True)
    parameters = list(inspect.signature(method).parameters.values())[1:]
    return [(p.name, p.kind, p.default, hints.get(p.name)) for p in parameters], hints.get("return")


def test_the_host_and_the_worker_have_every_declared_operation_under_its_declared_signature():
    """HostAPI and HostNotices declare them; the server implements each, the client sends each
    (a notice on a socket it is given first): same names, parameters, defaults and types."""
    for name, op in {**host_api.OPERATIONS, **host_api.NOTICES}.items():
        parameters, result = shape(op.declared)
        assert result is not None and all(hint is not None for *_, hint in parameters), name
        assert shape(getattr(HostServer, name)) == (parameters, result), name
        assert getattr(HostServer, name) is not op.declared, f"HostServer does not implement {name}"
        client_parameters, client_result = shape(getattr(HostClient, name))
        if name in host_api.NOTICES:
            assert client_parameters[0][0] == "sock", name
            client_parameters = client_parameters[1:]
        assert (client_parameters, client_result) == (parameters, result), name


def test_a_server_or_client_that_strays_from_the_declaration_fails_when_its_class_is_made():
    class Missing(HostServer):
        interrupt_kernel = host_api.HostAPI.interrupt_kernel

    with pytest.raises(TypeError, match="does not implement the host operation 'interrupt_kernel'"):
        operations.implements(host_api.HostAPI)(Missing)

    class Renamed(HostServer):
        def interrupt_kernel(self, kernel: str) -> None:
            pass

    with pytest.raises(TypeError, match=r"Renamed.interrupt_kernel\(self, kernel: str\) -> None differs"
                       r" from its declaration HostAPI.interrupt_kernel\(self, kernel_id: str\) -> None"):
        operations.implements(host_api.HostAPI)(Renamed)

    class Retyped(HostServer):
        def get_kernel(self, kernel_id: int) -> dict[str, Any]:
            return {}

    with pytest.raises(TypeError, match=r"Retyped.get_kernel\(self, kernel_id: int\)"):
        operations.implements(host_api.HostAPI)(Retyped)

    with pytest.raises(TypeError, match="HostClient.counts"):
        @operations.client_of(host_api.HostAPI, notices=host_api.HostNotices)
        class HostClient(host_api.HostAPI):
            def counts(self, timeout: float) -> dict[str, Any]:
                return {}


def sample(hint) -> Any:
    """A value of the declared type `hint`, as a caller would pass it."""
    samples = {str: "s", int: 3, float: 1.5, bytes: b'{"msg_id": "m"}', list[bytes]: [b"a", b"b"],
               dict[str, Any]: {"k": "v"}, list[str]: ["c"]}
    if hint in samples:
        return samples[hint]
    if typing.get_origin(hint) is typing.Annotated:
        return samples[typing.get_args(hint)[0]]
    return samples[next(arg for arg in typing.get_args(hint) if arg is not type(None))]  # X | None


def test_every_declared_argument_travels_from_the_client_to_the_server(monkeypatch):
    """Each client method sends its arguments as declared; the server binds them back to the
    same parameters (raw frames included), the worker's pid filled in where declared."""
    client = HostClient.__new__(HostClient)
    sent = []
    monkeypatch.setattr(HostClient, "_request", lambda self, op, arguments: sent.append((op, arguments)))
    monkeypatch.setattr(HostClient, "_notify", lambda self, sock, op, arguments: sent.append((op, arguments)))
    for name, op in {**host_api.OPERATIONS, **host_api.NOTICES}.items():
        if name == "counts":
            continue  # the client's own: it asks only a running host (test_kernels_api)
        hints = typing.get_type_hints(op.declared, include_extras=True)
        given = {p: sample(hints[p]) for p in op.signature.parameters if p != op.sender}
        method = getattr(client, name)
        if name in host_api.NOTICES:
            method("sock", **given)
        else:
            method(**given)
        sent_op, arguments = sent.pop()
        assert sent_op is op and arguments == {**given, **({op.sender: 0} if op.sender else {})}, name
        body, *frames = op.request(dict(arguments), sender=4321)
        received, args = operations.read_request(body, host_api.OPERATIONS, host_api.NOTICES)
        assert received is op
        bound = op.bind(args, frames)
        assert bound == {**given, **({op.sender: 4321} if op.sender else {})}, name
    with pytest.raises(TypeError, match=r"get_kernel\(\) missing 1 required positional argument"):
        client.get_kernel()
    with pytest.raises(TypeError, match="unexpected keyword argument 'kernel'"):
        client.interrupt_kernel("k", kernel="k")


def test_the_kernel_host_rebuilds_the_settings_the_web_worker_read(tmp_path, monkeypatch):
    """What crosses to the host is host_config's JSON; the host rebuilds the same typed settings
    from it, the store's own included (the swift store's are checked with the rest)."""
    from nbflask.host_client import host_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").mkdir()
    worker = load_settings({
        "server": {"websocket_send_buffer": 256 * 1024 * 1024},  # past the default: replay follows it
        "store": {"class": "memory", "root_dir": "notebooks", "secret": "s3cr3t"},
        "kernels": {"cull_idle_timeout": 7, "cull_busy": True, "transport": "tcp", "host": "service"},
        "terminals": {"shell_command": ["bash", "-l"], "env": {"EDITOR": "nano"}, "root_dir": "notebooks"},
    }, environ={})
    crossing = json.dumps(host_config(worker))
    host = load_settings(json.loads(crossing), environ={})
    assert host.kernels == worker.kernels and host.kernels.replay_buffer_bytes == 256 * 1024 * 1024
    assert host.terminals == worker.terminals
    root = Path(host.store.root_dir)
    assert host.store.class_name == "memory" and root.is_absolute() and root.samefile(tmp_path / "notebooks")
    assert host.store.options == {"secret": "s3cr3t"}
    swift = {"class": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k",
             "container": "nb", "prefix": "/a/b/"}
    worker = load_settings({"store": swift}, environ={})
    host = load_settings(json.loads(json.dumps(host_config(worker))), environ={})
    assert host.store == dataclasses.replace(worker.store, root_dir=host.store.root_dir)
    assert host.store.swift.prefix == "a/b"


def test_the_store_credentials_reach_the_kernel_host_off_its_command_line(make_app, tmp_path):
    """A started host has the store's options on its stdin: `ps` shows no credential."""
    app = make_app({"store": {"class": "memory", "max_bytes": 123456789}})
    with app.app_context():
        from nbflask.state import state

        state().host.list_kernels()  # starts the host
    host_pid = json.loads(next(runtime.runtime_dir().glob("kernel-host-*.json")).read_text())["pid"]
    command_line = Path(f"/proc/{host_pid}/cmdline").read_bytes()
    assert b"--config\0-" in command_line and b"123456789" not in command_line


def test_a_worker_reading_a_secret_while_another_writes_it_gets_the_whole_secret(tmp_path, monkeypatch):
    """A second worker arrives while the first is between creating and writing the file."""
    seen_by_second: list[bytes] = []
    real_fdopen = runtime.os.fdopen

    def fdopen_with_a_second_worker(fd, *args, **kwargs):
        if not seen_by_second:
            seen_by_second.append(b"pending")
            seen_by_second[0] = runtime.secret("cookie_secret")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(runtime.os, "fdopen", fdopen_with_a_second_worker)
    first = runtime.secret("cookie_secret")
    assert len(first) == 32
    assert seen_by_second == [first]
    assert runtime.secret("cookie_secret") == first


def test_a_runtime_folder_of_another_user_is_refused_at_start(make_app, tmp_path, monkeypatch):
    """They could replace the kernel host's sockets and read the kernels' keys. The folder is
    made ours; the server runs as a different uid (no root needed to see the check work)."""
    import os

    import pytest

    from nbflask.config import ConfigError

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    monkeypatch.setenv("NBFLASK_RUNTIME_DIR", str(theirs))
    real_uid = os.getuid()
    monkeypatch.setattr(runtime.os, "getuid", lambda: real_uid + 1)
    with pytest.raises(ConfigError, match=f"belongs to another user \\(uid {real_uid}\\)"):
        make_app()
