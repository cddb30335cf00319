"""Settings: layering, types, and one clear line for every kind of mistake."""

from __future__ import annotations

import sys

import pytest
import yaml

from nbflask.config import ConfigError, Settings, default_yaml, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "nbflask.yaml"
    path.write_text(text)
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(*args, environ={}, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_match_the_design():
    settings = load_settings(environ={})
    assert settings.server.ip == "127.0.0.1"
    assert settings.server.port == 8888
    assert settings.server.open_browser is True
    assert settings.server.base_url == "/"
    assert settings.auth.token == "auto"
    assert settings.store.class_name == "file"
    assert settings.kernels.default == "python3"
    assert settings.secure is False


def test_the_seeds_public_profile_reads(tmp_path):
    cert = tmp_path / "mycert.pem"
    cert.write_text("placeholder; only existence is checked here")
    path = write(tmp_path, f"""
server:
  certfile: {cert}
  ip: '*'
  open_browser: false
  port: 9999
auth:
  password: 'sha1:67c9e60bb8b6:9ffede0825894254b2e042ea597d771089e11aed'
""")
    settings = load_settings(path, environ={})
    assert settings.server.ip == "*" and settings.server.port == 9999
    assert settings.server.open_browser is False
    assert settings.server.certfile == str(cert.resolve())
    assert settings.secure
    assert settings.source == str(path)


def test_layers_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n  base_url: /a/\nstore:\n  root_dir: /srv\n")
    environ = {"NBFLASK_SERVER_PORT": "9100", "NBFLASK_STORE_ROOT_DIR": "/data"}
    settings = load_settings(path, environ=environ, overrides={"server": {"port": 9200}})
    assert settings.server.port == 9200
    assert settings.server.base_url == "/a/"
    assert settings.store.root_dir == "/data"


def test_nbflask_config_names_the_file(tmp_path):
    path = write(tmp_path, "server:\n  port: 9300\n")
    assert load_settings(environ={"NBFLASK_CONFIG": str(path)}).server.port == 9300


def test_base_url_gets_its_trailing_slash():
    assert load_settings({"server": {"base_url": "/ipython"}}, environ={}).server.base_url == "/ipython/"


def test_the_options_of_a_store_class_of_ones_own_pass_through():
    store = {"class": "mypkg.s3:S3Store", "bucket": "nb", "retries": "x"}
    settings = load_settings({"store": store}, environ={})
    assert settings.store.class_name == "mypkg.s3:S3Store"
    assert settings.store.options == {"bucket": "nb", "retries": "x"}
    assert settings.store.swift is None


SWIFT_LOGIN = {"class": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k"}


def swift_error(**changes) -> str:
    """The line for the swift store's options with some changed; a change to None leaves that key out."""
    store = {key: value for key, value in {**SWIFT_LOGIN, **changes}.items() if value is not None}
    return error_of({"store": store})


def test_swift_options_are_typed_settings_in_their_plain_form():
    store = {**SWIFT_LOGIN, "auth_version": "v3", "project_name": "science", "prefix": "/team-a/",
             "timeout": 5}
    settings = load_settings({"store": store}, environ={})
    assert settings.store.options == {}
    swift = settings.store.swift
    assert (swift.auth_url, swift.user, swift.key) == ("http://127.0.0.1:1/auth/v1.0", "u", "k")
    assert (swift.auth_version, swift.project_name, swift.prefix) == ("3", "science", "team-a")
    assert swift.timeout == 5.0 and isinstance(swift.timeout, float)
    assert (swift.container, swift.create_container, swift.retries) == ("notebooks", True, 1)
    v1 = load_settings({"store": {**SWIFT_LOGIN, "auth_version": 1}}, environ={})
    assert v1.store.swift.auth_version == "1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"auth_url": None}, "config: store.auth_url: expected a string, found nothing"),
        ({"key": ""}, "config: store.key: expected a non-empty string, found ''"),
        ({"auth_version": 2}, "config: store.auth_version: expected 1 (tempauth, Rackspace-style v1.0)"
                              " or 3 (Keystone), found '2'"),
        ({"region": "RegionOne"}, "config: store.region: only used with auth_version 3 (Keystone);"
                                  " v1 auth returns a single storage URL"),
        ({"auth_version": 3}, "config: store.project_name: expected the project that owns the container"
                              " (auth_version 3, Keystone, needs one), found nothing"),
        ({"container": "a/b"}, "config: store.container: expected a name without '/' of 1 to 256 bytes,"
                               " found 'a/b'"),
        ({"container": ""}, "config: store.container: expected a name without '/' of 1 to 256 bytes,"
                            " found ''"),
        ({"timeout": 0}, "config: store.timeout: expected seconds > 0, found 0"),
        ({"timeout": "10"}, "config: store.timeout: expected a number, found '10'"),
        ({"retries": True}, "config: store.retries: expected an integer, found True"),
        ({"retries": -1}, "config: store.retries: expected 0 or more, found -1"),
        ({"prefix": "../up"}, "config: store.prefix: expected a folder inside the container such as 'team-a',"
                              " found '../up'"),
        ({"create_container": "yes"}, "config: store.create_container: expected true/false, found 'yes'"),
        ({"key": 123}, "config: store.key: expected a string (quote it in YAML), found 123"),
    ],
)
def test_bad_swift_options_are_one_line_naming_the_key(changes, expected):
    assert swift_error(**changes) == expected


def test_an_unknown_swift_option_suggests_the_near_miss(tmp_path):
    path = write(tmp_path, "store:\n  class: swift\n  user: u\n  contianer: nb\n")
    message = error_of(path)
    assert message.startswith(f"{path}: unknown key 'store.contianer' (did you mean 'container'?);"
                              " known keys in 'store': class, root_dir,")
    assert "auth_url, user, key, auth_version" in message


def test_swift_errors_name_the_variable_or_the_choice_of_class(tmp_path):
    path = write(tmp_path, "store:\n  class: swift\n  auth_url: http://x/auth/v1.0\n  user: u\n")
    assert error_of(path) == f"{path}: store.key: expected a string, found nothing"
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"NBFLASK_STORE_KEY": "0123"})
    assert str(caught.value) == (
        "environment NBFLASK_STORE_KEY: store.key: expected a string (quote it in YAML), found 83"
    )
    assert load_settings(path, environ={"NBFLASK_STORE_KEY": "'0123'"}).store.swift.key == "0123"


def test_unknown_key_suggests_the_near_miss(tmp_path):
    message = error_of(write(tmp_path, "server:\n  prot: 9999\n"))
    assert message.startswith(str(tmp_path / "nbflask.yaml"))
    assert "server.prot" in message and "did you mean 'port'" in message


def test_unknown_section_suggests_the_near_miss(tmp_path):
    message = error_of(write(tmp_path, "sever:\n  port: 1\n"))
    assert "unknown section 'sever'" in message and "did you mean 'server'" in message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("server:\n  port: eighty\n", "server.port: expected an integer, found 'eighty'"),
        ("server:\n  open_browser: maybe\n", "server.open_browser: expected true/false, found 'maybe'"),
        ("server:\n  port: 70000\n", "server.port: expected 0-65535, found 70000"),
        ("kernels:\n  autorestart: 3\n", "kernels.autorestart: expected true/false, found 3"),
        ("auth:\n  allow_origin: {a: 1}\n", "auth.allow_origin: expected a list of strings"),
        ("server: [1, 2]\n", "server: expected a mapping of settings"),
    ],
)
def test_wrong_types_say_what_was_expected_and_found(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path, text))


@pytest.mark.parametrize("base_url", ["ipython/", "//evil/", "/a b/", "/x?y/"])
def test_bad_base_url(base_url):
    message = error_of({"server": {"base_url": base_url}})
    assert "server.base_url: expected a path" in message and repr(base_url) in message


def test_missing_certificate_names_the_file(tmp_path):
    message = error_of(write(tmp_path, "server:\n  certfile: /nope/mycert.pem\n"))
    assert "server.certfile" in message and "/nope/mycert.pem" in message


def test_empty_token_needs_a_password():
    assert "auth.token" in error_of({"auth": {"token": ""}})


def test_broken_yaml_names_the_line(tmp_path):
    message = error_of(write(tmp_path, "server:\n  port: [1,\n"))
    assert "not valid YAML" in message and "line" in message


def test_environment_errors_name_the_variable():
    with pytest.raises(ConfigError, match="environment NBFLASK_SERVER_PORT: server.port"):
        load_settings(environ={"NBFLASK_SERVER_PORT": "abc"})


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--port: server.port"):
        load_settings(
            environ={}, overrides={"server": {"port": -1}}, override_origins={("server", "port"): "--port"}
        )


def test_default_yaml_round_trips_to_the_defaults():
    text = default_yaml()
    assert "# port to listen on" in text
    assert load_settings(yaml.safe_load(text), environ={}) == load_settings(environ={})
    assert isinstance(load_settings(Settings()), Settings)


def test_swift_store_without_its_client_says_which_extra_to_install(monkeypatch):
    from nbflask.stores import store_class

    monkeypatch.setitem(sys.modules, "swiftclient.client", None)
    for name in [name for name in sys.modules if name.startswith("nbflask.stores.swift")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ConfigError, match=r"pip install 'nbflask\[swift\]'"):
        store_class("swift")


@pytest.mark.parametrize("size", [0, -1])
def test_a_body_limit_that_refuses_everything_is_refused(size):
    message = error_of({"server": {"max_body_size": size}})
    assert message == f"config: server.max_body_size: expected a positive number of bytes, found {size}"


@pytest.mark.parametrize("key", ["handshake_timeout", "header_timeout", "keepalive_timeout"])
def test_a_connection_timeout_must_be_positive(key):
    # gunicorn reads keepalive 0 as no keep-alive and no limit at all on the headers
    message = error_of({"server": {key: 0}})
    assert message == f"config: server.{key}: expected a positive number of seconds, found 0"


def test_gunicorn_refuses_a_zero_timeout_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = write(tmp_path, "server:\n  header_timeout: 0\n")
    conf = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    done = subprocess.run(
        [gunicorn, "-c", str(conf), "-b", "127.0.0.1:0", "nbflask:create_app()"], capture_output=True,
        text=True, timeout=60, env={**os.environ, "NBFLASK_CONFIG": str(config)},
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"nbflask: {config}: server.header_timeout: expected a positive number of seconds, found 0")


def test_nbflask_run_refuses_a_zero_body_limit_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    config = write(tmp_path, "server:\n  max_body_size: 0\n  open_browser: false\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "nbflask"), "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith("server.max_body_size: expected a positive number"
                                                          " of bytes, found 0")


def test_a_replay_buffer_bigger_than_the_send_buffer_is_refused():
    with pytest.raises(ConfigError, match="replay_buffer_bytes: expected at most server.websocket_send"):
        load_settings({"kernels": {"replay_buffer_bytes": 2048}, "server": {"websocket_send_buffer": 1024}},
                      environ={})


def test_a_kernel_websocket_is_closed_as_too_slow_no_later_than_its_replay_can_cover():
    """A client closed as too slow reconnects to what it missed: the replay keeps at least what
    the kernel websocket lets a client leave unread (the defaults closed at 64 MiB, kept 16)."""
    defaults = load_settings(environ={})
    assert defaults.kernels.replay_buffer_bytes == defaults.server.websocket_send_buffer
    assert defaults.kernel_send_buffer == defaults.kernels.replay_buffer_bytes
    smaller = load_settings({"server": {"websocket_send_buffer": 1 << 20}}, environ={})
    assert smaller.kernels.replay_buffer_bytes == smaller.kernel_send_buffer == 1 << 20
    chosen = load_settings({"kernels": {"replay_buffer_bytes": 1 << 20}}, environ={})
    assert chosen.kernel_send_buffer == 1 << 20 < chosen.server.websocket_send_buffer
    off = load_settings({"kernels": {"replay_buffer_bytes": 0}}, environ={})
    assert off.kernel_send_buffer == off.server.websocket_send_buffer


def test_every_swift_option_is_in_the_table_of_docs_stores_md():
    from pathlib import Path

    from nbflask.config.settings import SwiftSettings, yaml_keys

    doc = (Path(__file__).resolve().parents[2] / "docs" / "stores.md").read_text()
    table = doc[doc.index("### Options") : doc.index("### Three ways to log in")]
    assert [key for key in yaml_keys(SwiftSettings) if f"| `{key}` |" not in table] == []
