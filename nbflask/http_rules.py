"""What a request's head must look like for this server to read it as every proxy does.

A proxy in front and the server behind it must agree where a request's headers and body
end, or a request can hide inside another (smuggling). gevent's parser is lenient where
gunicorn and nginx refuse: it reads `X-Note : hi` as the end of the headers (everything after,
Content-Length included, is lost and the body is read as a second request), takes `+5` and
`0_5` as Content-Length 5, and keeps NUL bytes and bare-LF line ends. These rules refuse
what RFC 9112 lets a server refuse and gunicorn does, and `refusal` is the answer; no I/O
here, so any server can use them.
"""

from __future__ import annotations

import json
import re
from email.message import Message

# RFC 9110 5.1: a field name is a token.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: a field value holds visible characters, obs-text, spaces and tabs; NUL, CR,
# LF and the other controls are refused.
_FIELD_VALUE_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")
# RFC 9112 3: method SP request-target SP HTTP-version, one space each; the target holds no
# spaces or controls. HTTP/0.9's two-word form is not HTTP/1.x and is refused.
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e\x80-\xff]+ HTTP/1\.[01]\r\n")
# RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF; an extension holds no CR, LF or other control
# (a tab aside): a proxy that ends the line at a bare LF would read the body differently.
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(;[^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")
SHOWN = 60  # characters of a bad line quoted in the answer


def _shown(data: bytes) -> str:
    text = data[:SHOWN].decode("latin-1")
    return repr(text + ("..." if len(data) > SHOWN else ""))


def line_ending_problem(line: bytes) -> str | None:
    """Why a request line or header line does not end in CRLF, or None if it does.

    A bare LF is a line end to some parsers and not to others: the two would split the
    request differently.
    """
    if line.endswith(b"\r\n"):
        return None
    if line.endswith(b"\n"):
        return f"a line ending in a bare LF: {_shown(line[:-1])}"
    return f"an unfinished line: {_shown(line)}"


def request_line_problem(line: bytes) -> str | None:
    """Why a request line (with its line end) is not `METHOD target HTTP/1.x` CRLF, or None.

    gevent splits the line on any run of whitespace and keeps control bytes in the target;
    gunicorn refuses tabs, double spaces, a NUL in the target and HTTP/0.9, and so do we.
    """
    problem = line_ending_problem(line)
    if problem:
        return problem
    if not _REQUEST_LINE.fullmatch(line):
        return f"a malformed request line (expected 'METHOD target HTTP/1.x'): {_shown(line[:-2])}"
    return None


def chunk_size_problem(line: bytes) -> str | None:
    """Why a chunk's size line (with its line end) is not `hex-size [;extension]` CRLF, or None."""
    if not _CHUNK_LINE.fullmatch(line):
        return f"a malformed chunk size line: {_shown(line)}"
    return None


def header_line_problem(line: bytes) -> str | None:
    """Why one header line (with its line end) cannot be read unambiguously, or None.

    Refused: a bare-LF end, a continuation line (obsolete folding), no colon, a name that is
    not a token (a space before the colon is the case gevent turns into lost headers),
    control characters (NUL, a lone CR) in the value.
    """
    problem = line_ending_problem(line)
    if problem:
        return problem
    content = line[:-2]
    if content[:1] in (b" ", b"\t"):
        return f"a folded header line (obsolete line folding): {_shown(content)}"
    name, colon, value = content.partition(b":")
    if not colon:
        return f"a header line without a colon: {_shown(content)}"
    if name != name.rstrip(b" \t"):
        return f"whitespace before the colon in the header name {_shown(name)}"
    if not _FIELD_NAME.fullmatch(name):
        return f"an invalid header name {_shown(name)}"
    if _FIELD_VALUE_CONTROL.search(value):
        return f"a control character (such as NUL or CR) in the value of {_shown(name)}"
    return None


def framing_problem(headers: Message, version: str = "HTTP/1.1") -> str | None:
    """Why a request's body framing is ambiguous (a smuggling risk), or None if it is clear.

    A front proxy and this server must agree where each request ends. They may not when a
    request carries both Content-Length and Transfer-Encoding, several Content-Lengths, a
    Content-Length that is not plain digits (`+5`, `0_5`, which Python's int() reads as 5),
    or a transfer coding other than a lone `chunked` (which gevent would read as no body at
    all, taking the body for the next request), or chunked in HTTP/1.0, which has no chunked
    coding (RFC 9112 6.1). Jupyter's server and gunicorn answer 400.
    """
    codings = [c.strip().lower() for v in headers.get_all("Transfer-Encoding") or [] for c in v.split(",")]
    lengths = headers.get_all("Content-Length") or []
    if codings and lengths:
        return "both Content-Length and Transfer-Encoding"
    if len(lengths) > 1:
        return "more than one Content-Length"
    if lengths and not _DIGITS.fullmatch(lengths[0].strip(" \t")):
        return f"a Content-Length that is not a number: {lengths[0][:SHOWN]!r}"
    if codings and codings != ["chunked"]:
        return f"unsupported Transfer-Encoding {', '.join(codings)!r}"
    if codings and version == "HTTP/1.0":
        return "Transfer-Encoding in an HTTP/1.0 request"
    return None


def refusal(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP response with Jupyter's JSON error body, for a request the server refuses
    before any WSGI application sees it; the connection is closed after it."""
    body = json.dumps({"message": message, "reason": reason}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body
