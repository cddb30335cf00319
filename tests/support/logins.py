"""Logging in through the login form as a browser does, with Flask's test client.

Shared by the auth tests and the tests of what a login redirect keeps; against live servers,
test_auth_live.py logs in with a `requests` session instead.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

SEED_HASH = "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a"  # "mypassword"


def xsrf_of(client: FlaskClient, base: str = "/") -> str:
    """Load the login page like a browser does and return the `_xsrf` cookie it set."""
    if client.get_cookie("_xsrf", path=base) is None:
        client.get(base + "login")
    return client.get_cookie("_xsrf", path=base).value


def log_in(client: FlaskClient, password: str = "mypassword", base: str = "/", **params: str) -> TestResponse:
    data = {"password": password, "_xsrf": xsrf_of(client, base), **params}
    return client.post(base + "login", data=data)
