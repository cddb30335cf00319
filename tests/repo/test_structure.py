"""The code's shape, where it matters at run time: what each process loads, who talks to whom."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import nbflask
from nbflask import runtime
from nbflask.config import load_settings
from nbflask.host.server import Host
from nbflask.host_client import KernelHost

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
        f"host.Host(load_settings(host_client.host_config(load_settings({config!r}, environ={{}})),"
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


def test_the_worker_client_has_a_typed_method_for_every_host_operation(tmp_path):
    host = Host(load_settings({"store": {"root_dir": str(tmp_path)}}, environ={}), None)
    operations = set(host.operations()) | set(host.notices())
    for name in operations:
        method = getattr(KernelHost, name, None)
        assert callable(method), f"KernelHost has no method for the host operation {name!r}"
        assert "return" in inspect.get_annotations(method, eval_str=False), name


def test_the_kernel_host_rebuilds_the_settings_the_web_worker_read(tmp_path, monkeypatch):
    """What crosses to the host is host_config's JSON; the host rebuilds the same typed settings
    from it, without the store's options (credentials would show on its command line)."""
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
    assert host.store.options == {} and "s3cr3t" not in crossing


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
