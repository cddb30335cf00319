"""The Jupyter messaging protocol (5.x) on ZeroMQ frames, and its two websocket encodings.

A message on a kernel socket is `[*identities, b"<IDS|MSG>", signature, header,
parent_header, metadata, content, *buffers]`, the signature being HMAC-SHA256 over the four
JSON parts with the kernel's key. Only this module knows that layout. The relay uses
`split`/`verify` to pass the kernel's already-serialised frames on without touching the JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from ..clock import isoformat, utcnow

PROTOCOL_VERSION = "5.3"
DELIMITER = b"<IDS|MSG>"
V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
CHANNELS = ("shell", "control", "stdin", "iopub")


class WireError(ValueError):
    """A message that cannot be used: malformed frames, bad signature, bad JSON."""


def now_iso() -> str:
    return isoformat(utcnow())


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)  # made once:
# json.dumps with options builds an encoder per call, a tenth of the legacy splice


def dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _json_string(value: Any) -> bytes:
    """A header field as JSON: a string (what kernels send) straight through the C escaper."""
    return encode_basestring(value).encode() if isinstance(value, str) else dumps(value)


def loads_object(data: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise WireError(f"{what} is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise WireError(f"{what} must be a JSON object, found {type(value).__name__}")
    return value


def header(msg_type: str, session: str, username: str = "nbflask") -> dict[str, Any]:
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": username,
        "session": session,
        "date": now_iso(),
        "version": PROTOCOL_VERSION,
    }


@dataclass
class Message:
    """A decoded message; `buffers` are raw bytes, never JSON."""

    header: dict[str, Any]
    parent_header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    def parts(self) -> list[bytes]:
        """The four JSON frames followed by the buffers, as they go on the wire."""
        return [dumps(self.header), dumps(self.parent_header), dumps(self.metadata),
                dumps(self.content), *self.buffers]

    def to_dict(self, channel: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "header": self.header,
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "parent_header": self.parent_header,
            "metadata": self.metadata,
            "content": self.content,
            "buffers": self.buffers,
        }
        if channel is not None:
            data["channel"] = channel
        return data


def new_message(msg_type: str, content: dict[str, Any], *, session: str,
                parent: dict[str, Any] | None = None) -> Message:
    return Message(header=header(msg_type, session), parent_header=parent or {}, content=content)


def check_parts(parts: Sequence[bytes]) -> dict[str, Any]:
    """The header of `[header, parent, metadata, content, *buffers]`, if it looks like a message.

    Only the header is decoded: the kernel validates the rest, and big contents stay untouched.
    """
    if len(parts) < 4:
        raise WireError(f"a message needs 4 JSON parts, found {len(parts)}")
    head = loads_object(parts[0], "header")
    if not isinstance(head.get("msg_type"), str):
        raise WireError("header has no msg_type")
    return head


class Signer:
    """HMAC-SHA256 signing and constant-time verification with a kernel's key."""

    def __init__(self, key: bytes | str) -> None:
        self.key = key.encode() if isinstance(key, str) else key
        self._keyed = hmac.new(self.key, digestmod=hashlib.sha256)  # copied per message: the
        # key's padding and the two hash starts are done once, not for every message relayed

    def sign(self, parts: Sequence[bytes]) -> bytes:
        if not self.key:
            return b""
        digest = self._keyed.copy()
        for part in parts[:4]:
            digest.update(part)
        return digest.hexdigest().encode()

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> None:
        if not self.key:
            return
        if not signature:
            raise WireError("unsigned message")
        if not hmac.compare_digest(signature, self.sign(parts)):
            raise WireError("invalid message signature")

    def frames(self, parts: Sequence[bytes], identities: Sequence[bytes] = ()) -> list[bytes]:
        """The ZeroMQ frames for already-serialised parts: identities, delimiter, signature."""
        return [*identities, DELIMITER, self.sign(parts), *parts]

    def serialize(self, message: Message, identities: Sequence[bytes] = ()) -> list[bytes]:
        return self.frames(message.parts(), identities)


def split(frames: Sequence[bytes]) -> tuple[list[bytes], bytes, list[bytes]]:
    """`(identities, signature, parts)` of a frame list, without decoding the JSON."""
    try:
        index = list(frames).index(DELIMITER)
    except ValueError:
        raise WireError("no <IDS|MSG> delimiter") from None
    rest = list(frames[index + 1:])
    if len(rest) < 5:
        raise WireError(f"a message needs a signature and 4 JSON parts, found {len(rest)} frames")
    return list(frames[:index]), rest[0], rest[1:]


# Websocket encodings -------------------------------------------------------------------

def v1_pieces(channel: str, parts: Sequence[bytes]) -> list[bytes]:
    """The v1.kernel.websocket.jupyter.org binary message, as pieces to send back to back.

    The offsets (little-endian uint64, preceded by their count) mark where the channel name
    and each part start; the last one is the end of the message.
    """
    name = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (count + 1), 8 * (count + 1) + len(name)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return [struct.pack(f"<{count + 1}Q", count, *offsets), name, *parts]


def v1_pack(channel: str, parts: Sequence[bytes]) -> bytes:
    return b"".join(v1_pieces(channel, parts))


def v1_unpack(data: bytes) -> tuple[str, list[bytes]]:
    """`(channel, parts)` of a v1 binary frame; WireError if the offsets do not fit."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 8:
        raise WireError("v1 frames are binary and start with an 8-byte offset count")
    (count,) = struct.unpack_from("<Q", data)
    if count < 2 or 8 * (count + 1) > len(data):
        raise WireError(f"v1 frame announces {count} offsets for {len(data)} bytes")
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    if offsets[0] != 8 * (count + 1) or offsets[-1] > len(data) or list(offsets) != sorted(offsets):
        raise WireError("v1 frame offsets do not fit the frame")
    try:
        channel = bytes(data[offsets[0]:offsets[1]]).decode()
    except UnicodeDecodeError:
        raise WireError("v1 channel name is not UTF-8") from None
    return channel, [bytes(data[offsets[i]:offsets[i + 1]]) for i in range(1, count - 1)]


def _utf8(part: bytes) -> bytes:
    """`part` if it is valid UTF-8 (a text frame must be), else with bad bytes replaced."""
    try:
        str(part, "utf-8")
        return part
    except UnicodeDecodeError:
        return str(part, "utf-8", errors="replace").encode()


def legacy_pieces(channel: str, parts: Sequence[bytes]) -> tuple[bool, list[bytes]]:
    """The legacy JSON encoding of kernel parts, as `(is_text, pieces)` to send back to back:
    a text frame, or a binary frame (offsets, JSON, buffers) when there are buffers.

    The JSON parts are spliced as the kernel serialised them; only the header is decoded,
    for the top-level msg_id and msg_type that clients of the legacy protocol read.
    """
    head = loads_object(parts[0], "header")
    body = [
        b'{"header":', _utf8(parts[0]), b',"parent_header":', _utf8(parts[1]), b',"metadata":',
        _utf8(parts[2]), b',"content":', _utf8(parts[3]), b',"msg_id":', _json_string(head.get("msg_id", "")),
        b',"msg_type":', _json_string(head.get("msg_type", "")), b',"channel":', _json_string(channel),
        b',"buffers":[]}',
    ]
    buffers = list(parts[4:])
    if not buffers:
        return True, body
    sizes = [sum(len(piece) for piece in body), *(len(buffer) for buffer in buffers)]
    offsets = [4 * (len(sizes) + 1)]
    for size in sizes[:-1]:
        offsets.append(offsets[-1] + size)
    return False, [struct.pack(f"!{len(sizes) + 1}I", len(sizes), *offsets), *body, *buffers]


def legacy_unpack(data: str | bytes) -> tuple[str, Message]:
    """`(channel, message)` from a legacy JSON text frame or binary frame with buffers."""
    if isinstance(data, str):
        body, buffers = data.encode(), []
    else:
        if len(data) < 4:
            raise WireError("binary frame too short")
        (count,) = struct.unpack_from("!I", data)
        if count < 1 or 4 * (count + 1) > len(data):
            raise WireError(f"binary frame announces {count} parts for {len(data)} bytes")
        offsets = list(struct.unpack_from(f"!{count}I", data, 4)) + [len(data)]
        if offsets != sorted(offsets) or offsets[0] < 4 * (count + 1):
            raise WireError("binary frame offsets are out of order")
        pieces = [bytes(data[offsets[i]:offsets[i + 1]]) for i in range(count)]
        body, buffers = pieces[0], pieces[1:]
    raw = loads_object(body, "message")
    channel = raw.get("channel")
    if channel not in CHANNELS:
        raise WireError(f"unknown channel {channel!r}")
    head = raw.get("header")
    if not isinstance(head, dict) or not isinstance(head.get("msg_type"), str):
        raise WireError("message has no header with a msg_type")
    sections = {}
    for key in ("parent_header", "metadata", "content"):
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            raise WireError(f"{key} must be a JSON object")
        sections[key] = value
    return channel, Message(header=head, buffers=buffers, **sections)
