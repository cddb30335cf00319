"""One look at a deployment, as the checks share it: the browser's cookies, its login, the
page's API requests; and what each check finds, a Result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from .client import Client, Reply, Target

SESSION_COOKIE = "nbflask-session-"  # then the host, port and prefix the browser sees


@dataclass
class Result:
    name: str
    passed: bool
    detail: str
    fix: str = ""
    blocking: bool = False

    def line(self) -> str:
        text = f"{'PASS' if self.passed else 'FAIL'}  {self.name:<9} {self.detail}"
        return text + (f" -- fix: {self.fix}" if self.fix and not self.passed else "")


def ok(name: str, detail: str) -> Result:
    return Result(name, True, detail)


def fail(name: str, detail: str, fix: str, *, blocking: bool = False) -> Result:
    return Result(name, False, detail, fix, blocking)


@dataclass
class Visit:
    """One look at a deployment, with what the checks learn on the way (cookies, a login)."""

    client: Client
    token: str | None = None
    password: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)
    logged_in: bool = False

    @property
    def target(self) -> Target:
        return self.client.target

    @property
    def credentials(self) -> str | None:
        return "password" if self.password else "token" if self.token else None

    def get(self, path: str, *, cookies: bool = False) -> Reply:
        return self.client.request("GET", path, self.cookie_header() if cookies else {})

    def cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def api(self, method: str, path: str, body: bytes | None = None) -> Reply:
        """An API request as the logged-in page makes it: its cookies and the XSRF header."""
        headers = {**self.cookie_header(), "X-XSRFToken": self.cookies.get("_xsrf", "")}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.client.request(method, self.target.path + path, headers, body)

    def note_cookies(self, reply: Reply) -> Reply:
        """Remember the cookies `reply` sets, for the cookie check only."""
        self.set_cookies.extend(reply.all("Set-Cookie"))
        return reply

    def keep_cookies(self, reply: Reply) -> Reply:
        """Keep the cookies `reply` sets, as the browser would, and note them."""
        for line in self.note_cookies(reply).all("Set-Cookie"):
            try:
                parsed = SimpleCookie(line)
            except CookieError:
                continue
            for name, morsel in parsed.items():
                self.cookies[name] = morsel.value
        return reply

    def login(self) -> str | None:
        """Log in as a browser does (the token link, or the login form); None, or what failed."""
        prefix = self.target.path
        if self.password:
            self.keep_cookies(self.get(prefix + "login", cookies=True))
            form = urlencode({"password": self.password, "_xsrf": self.cookies.get("_xsrf", "")})
            headers = {**self.cookie_header(), "Content-Type": "application/x-www-form-urlencoded"}
            reply = self.keep_cookies(self.client.request("POST", prefix + "login", headers, form.encode()))
        else:
            reply = self.keep_cookies(self.get(prefix + f"tree?token={self.token}"))
        session = any(name.startswith(SESSION_COOKIE) for name in self.cookies)
        if reply.status not in (302, 303) or not session:
            return f"the {self.credentials} did not log in (HTTP {reply.status})"
        self.logged_in = True
        return None
