"""Password hashes: the seed's legacy sha1, Jupyter's argon2, `nbflask passwd`, plain-text refusal."""

from __future__ import annotations

import hashlib
import stat
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from nbflask import passwords
from nbflask.cli import main
from nbflask.config import ConfigError, load_settings

SEED_HASH = "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a"  # "mypassword"


def test_the_seed_sha1_hash_verifies():
    assert passwords.verify(SEED_HASH, "mypassword")
    assert not passwords.verify(SEED_HASH, "mypassword ")
    assert not passwords.verify(SEED_HASH, "")


@pytest.mark.parametrize("algorithm", ["md5", "sha256", "sha512", "blake2b", "sha3_256"])
def test_any_hashlib_algorithm_in_the_legacy_format(algorithm):
    salt = "5a1t"
    digest = hashlib.new(algorithm, "pässword".encode() + salt.encode()).hexdigest()
    stored = f"{algorithm}:{salt}:{digest}"
    assert passwords.is_hash(stored)
    assert passwords.verify(stored, "pässword")
    assert not passwords.verify(stored, "password")


def test_new_hashes_are_argon2id_with_a_fresh_salt():
    first, second = passwords.hash_password("s3cret"), passwords.hash_password("s3cret")
    assert first.startswith("argon2:$argon2id$") and first != second
    assert passwords.verify(first, "s3cret") and passwords.verify(second, "s3cret")
    assert not passwords.verify(first, "S3cret")


def test_a_jupyter_argon2_hash_verifies():
    # What jupyter_server.auth.passwd("jupyter") writes: argon2id with Jupyter's own parameters.
    from argon2 import PasswordHasher

    stored = "argon2:" + PasswordHasher(memory_cost=10240, time_cost=10, parallelism=8).hash("jupyter")
    assert passwords.verify(stored, "jupyter")
    assert not passwords.verify(stored, "jupyterlab")


@pytest.mark.parametrize(
    "value",
    [
        "mypassword",
        "correct horse battery staple",
        "sha1:salt",
        "nosuchalgo:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a",
        "hunter:twofish:cafe",
        "sha1:0e112c3ddfce:not-hex",
        "sha1:0e112c3ddfce:a68df677",
        "argon2:mypassword",
    ],
)
def test_a_plain_text_password_is_refused_at_start_up(value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"auth": {"password": value}})
    message = str(caught.value)
    assert "auth.password" in message and "nbflask passwd" in message
    assert value not in message  # the error line never repeats a password into a log
    assert "hunter" not in message and "twofish" not in message
    assert "\n" not in message


def test_hashes_are_accepted_in_the_config():
    argon = passwords.hash_password("x")
    for value in (SEED_HASH, argon):
        assert load_settings({"auth": {"password": value, "token": ""}}).auth.password == value


def test_wrong_hashes_never_raise():
    for stored in ("", "sha1::", "argon2:$argon2id$garbage", "x:y:z"):
        assert passwords.verify(stored, "anything") is False


def test_passwd_prompts_twice_without_echo():
    result = CliRunner().invoke(main, ["passwd"], input="tr0ub4dor\ntr0ub4dor\n")
    assert result.exit_code == 0, result.output
    assert "Enter password" in result.output and "Verify password" in result.output
    assert "tr0ub4dor" not in result.output
    hashed = result.output.strip().splitlines()[-1]
    assert passwords.verify(hashed, "tr0ub4dor")


def test_passwd_asks_again_when_the_two_entries_differ():
    result = CliRunner().invoke(main, ["passwd"], input="one\ntwo\nthree\nthree\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert passwords.verify(result.output.strip().splitlines()[-1], "three")


def test_passwd_refuses_an_empty_password_from_stdin():
    result = CliRunner().invoke(main, ["passwd", "--stdin"], input="\n")
    assert result.exit_code == 2
    assert "must not be empty" in result.output


def test_passwd_stdin_in_a_real_process_writes_the_config_keeping_the_rest(tmp_path):
    config = tmp_path / "public.yaml"
    original = (
        "# the seed's public server\n"
        "server:\n"
        "  ip: '*'          # every interface\n"
        "  port: 9999\n"
        "  open_browser: false\n"
        "\n"
        "auth:\n"
        "    # set by nbflask passwd\n"
        "    password: 'sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a'\n"
        "    token: ''\n"
        "store:\n"
        "  root_dir: /srv/notebooks\n"
    )
    config.write_text(original)
    config.chmod(0o640)
    done = subprocess.run(
        [sys.executable, "-m", "nbflask", "passwd", "--stdin", "--config", str(config)],
        input="n3w-secret\n", capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert passwords.verify(hashed, "n3w-secret")
    updated = config.read_text()
    old_lines, new_lines = original.splitlines(), updated.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1] == f"    password: '{hashed}'"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert load_settings(str(config)).auth.password == hashed


def test_passwd_adds_the_section_or_the_key(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("server:\n  port: 9000")
    with_auth = tmp_path / "auth.yaml"
    with_auth.write_text("store:\n  class: swift\n  password: swift-secret\nauth:\n  token: ''\n")
    fresh = tmp_path / "fresh.yaml"
    for path in (bare, with_auth, fresh):
        result = CliRunner().invoke(main, ["passwd", "--stdin", "--config", str(path)], input="pw\n")
        assert result.exit_code == 0, result.output
        data = yaml.safe_load(path.read_text())
        assert passwords.verify(data["auth"]["password"], "pw")
    assert yaml.safe_load(bare.read_text())["server"] == {"port": 9000}
    assert yaml.safe_load(with_auth.read_text())["store"] == {"class": "swift", "password": "swift-secret"}
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_passwd_refuses_to_edit_a_file_it_cannot_edit_safely(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text("auth: {token: abc}\n")
    result = CliRunner().invoke(main, ["passwd", "--stdin", "--config", str(flow)], input="pw\n")
    assert result.exit_code == 2
    assert "set it by hand" in result.output
    assert flow.read_text() == "auth: {token: abc}\n"


def test_passwd_on_a_real_terminal_does_not_echo():
    """`nbflask passwd` in a pseudo-terminal: two prompts, the typed password never shown."""
    import os
    import pty
    import select
    import signal

    from live import BIN

    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as in a user's shell
        os.execv(str(BIN / "nbflask"), [str(BIN / "nbflask"), "passwd"])
    seen = b""

    def read_until(marker: bytes | None) -> None:
        """Read until `marker` is seen, or with None until the child closes the terminal."""
        nonlocal seen
        while marker is None or marker not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"no {marker!r} after 30 s; got {seen!r}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            seen += chunk

    try:
        read_until(b"Enter password")
        os.write(fd, b"pty-s3cret\n")
        read_until(b"Verify password")
        os.write(fd, b"pty-s3cret\n")
        read_until(None)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # never leave a child waiting for input
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"pty-s3cret" not in seen
    hashed = seen[seen.index(b"argon2:"):].split()[0].decode()
    assert passwords.verify(hashed, "pty-s3cret")
