"""Shared fixtures: every test gets its own runtime folder, notebook folder and app."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from live import TOKEN  # one token for in-process and live servers

import nbflask

pytest_plugins = [
    "swift_fixtures",  # a real Swift server: swift_server, swift_options
    "ui_tools",  # headless Chromium and live servers for the front-ends: browser, server
]


@pytest.hookimpl(tryfirst=True)  # before -m and -k deselect: every run of a test is seen
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a real Swift, for the fast loop (`-m "not slow and not swift and not
    browser"`): every test that uses the Swift server, and every run on the swift store (whose
    fixture asks for the server only then). Refuse to run a `kernel_transports` test that did
    not get one run per transport."""
    missing = transports_missing(items)
    if missing:
        raise pytest.UsageError(f"not run on every kernel transport {KERNEL_TRANSPORTS}: {missing}")
    for item in items:
        params = getattr(getattr(item, "callspec", None), "id", "")
        if "swift_server" in getattr(item, "fixturenames", ()) or "swift" in params.split("-"):
            item.add_marker(pytest.mark.swift)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's config, runtime folder or NBFLASK_* variables."""
    for name in list(os.environ):
        if name.startswith("NBFLASK_"):
            monkeypatch.delenv(name)
    runtime = tmp_path_factory.mktemp("runtime")
    runtime.chmod(0o700)
    monkeypatch.setenv("NBFLASK_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("NBFLASK_CONFIG_DIR", str(tmp_path_factory.mktemp("userconfig")))
    monkeypatch.setenv("NBFLASK_DATA_DIR", str(tmp_path_factory.mktemp("userdata")))


#: The kernel transports a test marked `kernel_transports` runs on, once each: unix sockets
#: (the default) and TCP ports.
KERNEL_TRANSPORTS = ("ipc", "tcp")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("kernel_transports"):
        metafunc.parametrize("kernel_transport", KERNEL_TRANSPORTS, indirect=True)


def transports_missing(items: list[pytest.Item]) -> list[str]:
    """The `kernel_transports` tests that lack a run on some transport, by the ids of the runs
    they got: the marker is how a suite asks for every run, so a missing one must not go unseen."""
    runs: dict[str, dict[str, str]] = {}
    for item in items:
        if item.get_closest_marker("kernel_transports"):
            callspec = getattr(item, "callspec", None)
            params = dict(callspec.params) if callspec else {}
            transport = params.pop("kernel_transport", None)
            test = f"{item.parent.nodeid}::{item.originalname}{sorted(map(repr, params.items()))}"
            runs.setdefault(test, {})[transport] = item.nodeid
    short = [got for got in runs.values() if set(got) != set(KERNEL_TRANSPORTS)]
    return sorted(nodeid for got in short for nodeid in got.values())


@pytest.fixture(autouse=True)
def kernel_transport(request: pytest.FixtureRequest, isolated_environment: None,
                     monkeypatch: pytest.MonkeyPatch) -> str:
    """`kernels.transport` for every app and live server of a `kernel_transports` test, through
    its variable; other tests get the configured default."""
    transport = getattr(request, "param", None)
    if transport is not None:
        monkeypatch.setenv("NBFLASK_KERNELS_TRANSPORT", transport)
    return transport or "default"


@pytest.fixture
def root_dir(tmp_path) -> str:
    root = tmp_path / "notebooks"
    root.mkdir()
    return str(root)


@pytest.fixture
def make_app(root_dir: str) -> Callable[..., Flask]:
    """Build an app from a YAML-shaped dict, with a fixed token and the test's own root."""

    def make(config: dict[str, Any] | None = None) -> Flask:
        merged: dict[str, Any] = {"auth": {"token": TOKEN}, "store": {"root_dir": root_dir}}
        for section, values in (config or {}).items():
            merged.setdefault(section, {}).update(values)
        app = nbflask.create_app(merged)
        app.config["TESTING"] = True
        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client that authenticates every request with the token header, like an API client."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return test_client


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    return app.test_client()
