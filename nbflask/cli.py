"""The `nbflask` command: run, kernel-host, passwd, config init, list, stop, doctor.

`run` monkey-patches with gevent before anything imports Flask, ssl or zmq, so keep this
module's top-level imports free of them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .config import ENV_CONFIG, ConfigError, default_yaml, profile_path

CONTEXT = {"help_option_names": ["-h", "--help"]}


def fail(message: str) -> None:
    click.echo(f"nbflask: error: {message}", err=True)
    sys.exit(2)


def reporting_config_errors(func: Callable) -> Callable:
    """Turn a ConfigError anywhere in a command into one line and exit status 2."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc))

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="nbflask")
def main() -> None:
    """nbflask: a Jupyter-compatible notebook server."""


def config_file(config: str | None, profile: str | None) -> str | None:
    if config and profile:
        raise ConfigError("use either --config or --profile, not both")
    if profile:
        path = profile_path(profile)
        if not path.is_file():
            raise ConfigError(
                f"profile '{profile}': no file at {path}; create it with"
                f" `nbflask config init --profile {profile}`"
            )
        return str(path)
    return config or os.environ.get(ENV_CONFIG) or None


RUN_FLAGS = {
    "ip": ("server", "ip", "--ip"),
    "port": ("server", "port", "--port"),
    "base_url": ("server", "base_url", "--base-url"),
    "certfile": ("server", "certfile", "--certfile"),
    "keyfile": ("server", "keyfile", "--keyfile"),
    "root_dir": ("store", "root_dir", "--root-dir"),
}


@main.command(context_settings=CONTEXT)
@click.option("--config", "config", metavar="FILE", help="YAML settings file (default: $NBFLASK_CONFIG).")
@click.option("--profile", metavar="NAME", help="Profile made by `nbflask config init --profile NAME`.")
@click.option("--ip", help="Interface to listen on; '*' for every interface.")
@click.option("--port", type=int, help="Port to listen on.")
@click.option("--base-url", help="URL prefix, e.g. /ipython/.")
@click.option("--root-dir", help="Folder the notebooks live in.")
@click.option("--certfile", help="PEM certificate (may hold the key too) to serve https.")
@click.option("--keyfile", help="PEM private key, if not inside the certificate file.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@reporting_config_errors
def run(config: str | None, profile: str | None, no_browser: bool, **flags: Any) -> None:
    """Serve notebooks (gevent WSGI server, websockets included)."""
    from gevent import monkey

    monkey.patch_all()
    from .app import build_app
    from .config import load_settings
    from .serving import serve

    overrides: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], str] = {}
    for name, value in flags.items():
        if value is not None:
            section, key, flag = RUN_FLAGS[name]
            overrides.setdefault(section, {})[key] = value
            origins[(section, key)] = flag
    if no_browser:
        overrides.setdefault("server", {})["open_browser"] = False
        origins[("server", "open_browser")] = "--no-browser"
    settings = load_settings(
        config_file(config, profile), overrides=overrides, override_origins=origins
    )
    serve(build_app(settings), settings, say=lambda line: click.echo(line, err=True))


@main.command("kernel-host", context_settings=CONTEXT)
@click.option("--config", "config", metavar="FILE", help="YAML settings file (default: $NBFLASK_CONFIG).")
@click.option("--profile", metavar="NAME", help="Profile made by `nbflask config init --profile NAME`.")
@reporting_config_errors
def kernel_host(config: str | None, profile: str | None) -> None:
    """Run the kernel host as a service of its own (`kernels.host: service`).

    The web servers of the same settings and runtime folder use it; it keeps the kernels while
    they restart, runs until SIGTERM (which stops its kernels) and adopts the kernels an
    earlier service host left running.
    """
    from gevent import monkey

    monkey.patch_all()
    from . import host_client as client
    from .config import load_settings
    from .host import server as host

    settings = load_settings(config_file(config, profile))
    if settings.kernels.host != client.SERVICE:
        raise ConfigError(f"kernels.host is {settings.kernels.host!r} in {settings.source or 'the settings'}:"
                          " set it to 'service' (or NBFLASK_KERNELS_HOST=service, as the systemd units"
                          " in config/ do) so the web servers use this kernel host instead of starting"
                          " their own")
    host.run(client.host_config(settings))


@main.command(context_settings=CONTEXT)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--config", "config_path", metavar="FILE", help="Also write the hash into FILE.")
@reporting_config_errors
def passwd(from_stdin: bool, config_path: str | None) -> None:
    """Hash a password for auth.password (argon2) and print the hash."""
    from .config import set_in_file
    from .passwords import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Enter password", hide_input=True, confirmation_prompt="Verify password", err=True
        )
    if not password:
        raise ConfigError("the password must not be empty")
    hashed = hash_password(password)
    click.echo(hashed)
    if config_path:
        set_in_file(config_path, "auth", "password", hashed)
        click.echo(f"Wrote auth.password to {config_path}; restart the server to use it.", err=True)


@main.group(context_settings=CONTEXT)
def config() -> None:
    """Write and inspect configuration files."""


@config.command("init", context_settings=CONTEXT)
@click.argument("path", required=False)
@click.option("--profile", metavar="NAME", help="Write to the per-user profile NAME instead of PATH.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@reporting_config_errors
def config_init(path: str | None, profile: str | None, force: bool) -> None:
    """Write a YAML file with every option, its default and a comment."""
    if path and profile:
        raise ConfigError("give either PATH or --profile, not both")
    target = profile_path(profile) if profile else Path(path or "nbflask.yaml")
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(default_yaml(), encoding="utf-8")
    click.echo(f"Wrote {target}")
    if profile:
        click.echo(f"Edit it, then start with `nbflask run --profile {profile}`.")


def _server_url(info: dict[str, Any]) -> str:
    return info["url"] + (f"?token={info['token']}" if info.get("token") else "")


@main.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per server.")
def list_servers(as_json: bool) -> None:
    """List running servers (from their info files; stale ones are pruned)."""
    from .runtime import running_servers

    servers = list(running_servers())
    if as_json:
        for info in servers:
            click.echo(json.dumps(info))
        return
    click.echo("Currently running servers:")
    for info in servers:
        click.echo(f"{_server_url(info)} :: {info.get('root_dir', '')}")


@main.command(context_settings=CONTEXT)
@click.argument("port", type=int, required=False)
@reporting_config_errors
def stop(port: int | None) -> None:
    """Stop the server on PORT (or the only one running)."""
    from .runtime import running_servers

    servers = list(running_servers())
    if port is not None:
        servers = [info for info in servers if info["port"] == port]
    if not servers:
        raise ConfigError(f"no running server{' on port ' + str(port) if port else ''}")
    if len(servers) > 1:
        ports = ", ".join(str(info["port"]) for info in servers)
        raise ConfigError(f"several servers are running (ports {ports}); say which: `nbflask stop PORT`")
    info = servers[0]
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(other["pid"] == info["pid"] for other in running_servers()):
            click.echo(f"Stopped the server on port {info['port']}.")
            return
        time.sleep(0.1)
    raise ConfigError(f"the server on port {info['port']} (pid {info['pid']}) did not stop within 10 s")


@main.command(context_settings=CONTEXT)
@click.argument("url")
@click.option("--token", metavar="T", help="A token the server accepts (else the URL's ?token=).")
@click.option("--password", "ask_password", is_flag=True, help="Log in with the password (asked for).")
@click.option("--cafile", metavar="PEM", help="Trust this CA (or self-signed certificate) for TLS.")
@click.option("--timeout", type=float, default=10, show_default=True, help="Seconds to wait for each answer.")
def doctor(url: str, token: str | None, ask_password: bool, cafile: str | None, timeout: float) -> None:
    """Check a running deployment at URL from outside, as a browser meets it.

    TLS and the certificate, authentication, the URL prefix, cookie flags, and a kernel
    reached over a websocket (started and deleted again; needs a login by token or password).
    One line per check with the fix; exit status 0 if all passed, 1 if not.
    """
    from .doctor import DoctorError, diagnose

    if cafile and not Path(cafile).is_file():
        fail(f"--cafile: no file at {cafile}")
    password = click.prompt("Password", hide_input=True, err=True) if ask_password else None
    try:
        passed = diagnose(url, token=token, password=password, cafile=cafile, timeout=timeout, say=click.echo)
    except DoctorError as exc:
        fail(str(exc))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
