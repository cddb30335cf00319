"""The Jupyter wire protocol: signing, framing, and both websocket encodings."""

from __future__ import annotations

import json
import struct

import pytest

from nbflask.protocol import wire


def decode(parts: list[bytes]) -> wire.Message:
    """The message in `[header, parent, metadata, content, *buffers]` (the relay itself passes
    parts on undecoded: only the tests look inside)."""
    sections = [wire.loads_object(part, name) for part, name in
                zip(parts[1:4], ("parent_header", "metadata", "content"), strict=True)]
    return wire.Message(wire.check_parts(parts), *sections, buffers=list(parts[4:]))


def legacy_frame(channel: str, parts: list[bytes]) -> str | bytes:
    """The legacy frame a client receives: `legacy_pieces` joined, a str for a text frame."""
    text, pieces = wire.legacy_pieces(channel, parts)
    joined = b"".join(pieces)
    return joined.decode() if text else joined


def test_signed_frames_verify_and_decode():
    signer = wire.Signer(b"secret-key")
    message = wire.new_message("execute_request", {"code": "1+1"}, session="s1")
    message.buffers = [b"\x00\x01raw"]
    frames = signer.serialize(message, identities=[b"client-a"])
    identities, signature, parts = wire.split(frames)
    assert identities == [b"client-a"]
    signer.verify(signature, parts)
    decoded = decode(parts)
    assert decoded.msg_type == "execute_request"
    assert decoded.content == {"code": "1+1"}
    assert decoded.buffers == [b"\x00\x01raw"]
    assert decoded.header["version"].startswith("5.")


@pytest.mark.parametrize("tamper", ["content", "signature", "unsigned", "other-key"])
def test_forged_or_unsigned_messages_are_refused(tamper):
    signer = wire.Signer(b"secret-key")
    frames = signer.serialize(wire.new_message("status", {"execution_state": "idle"}, session="s"))
    _, signature, parts = wire.split(frames)
    if tamper == "content":
        parts[3] = b'{"execution_state":"busy"}'
    elif tamper == "signature":
        signature = signature[:-1] + (b"0" if signature[-1:] != b"0" else b"1")
    elif tamper == "unsigned":
        signature = b""
    else:
        signature = wire.Signer(b"other").sign(parts)
    with pytest.raises(wire.WireError):
        signer.verify(signature, parts)


def test_split_refuses_frames_without_delimiter_or_parts():
    with pytest.raises(wire.WireError, match="delimiter"):
        wire.split([b"a", b"b"])
    with pytest.raises(wire.WireError, match="4 JSON parts"):
        wire.split([wire.DELIMITER, b"sig", b"{}"])


def test_v1_frames_round_trip_and_match_the_published_layout():
    parts = [b'{"msg_type":"x"}', b"{}", b"{}", b'{"a":1}', b"buffer"]
    data = wire.v1_pack("iopub", parts)
    (count,) = struct.unpack_from("<Q", data)
    assert count == len(parts) + 2
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    assert offsets[0] == 8 * (count + 1) and offsets[-1] == len(data)
    assert data[offsets[0]:offsets[1]] == b"iopub"
    assert wire.v1_unpack(data) == ("iopub", parts)


@pytest.mark.parametrize("data", [b"", b"\x05\x00\x00\x00\x00\x00\x00\x00", b"\xff" * 40, "text"])
def test_malformed_v1_frames_raise_wire_errors(data):
    with pytest.raises(wire.WireError):
        wire.v1_unpack(data)


def test_legacy_text_splices_kernel_json_and_keeps_buffers_binary():
    message = wire.new_message("display_data", {"data": {"text/plain": "é"}}, session="s")
    text = legacy_frame("iopub", message.parts())
    decoded = json.loads(text)
    assert decoded["channel"] == "iopub" and decoded["msg_type"] == "display_data"
    assert decoded["content"]["data"]["text/plain"] == "é"
    binary = legacy_frame("iopub", message.parts() + [b"\x00buf", b"two"])
    channel, again = wire.legacy_unpack(binary.replace(b'"iopub"', b'"shell"'))
    assert channel == "shell" and again.buffers == [b"\x00buf", b"two"]


@pytest.mark.parametrize("data", [
    "not json", "[1, 2]", '{"channel": "nowhere", "header": {"msg_type": "x"}}',
    '{"channel": "shell"}', '{"channel": "shell", "header": {"msg_type": "x"}, "content": [1]}',
    b"\x00\x00", b"\x00\x00\x00\x09\x00",
])
def test_malformed_legacy_frames_raise_wire_errors(data):
    with pytest.raises(wire.WireError):
        wire.legacy_unpack(data)


def test_legacy_text_frames_are_always_valid_utf8():
    parts = [b'{"msg_type":"stream","msg_id":"m"}', b"{}", b"{}", b'{"text":"bad \xff byte"}']
    text = legacy_frame("iopub", parts)
    assert json.loads(text)["content"]["text"] == "bad \ufffd byte"


def test_interoperates_with_jupyter_clients_session():
    """Messages signed by jupyter_client (what ipykernel uses) verify here, and the reverse."""
    from jupyter_client.session import Session

    theirs = Session(key=b"shared-key", signature_scheme="hmac-sha256")
    ours = wire.Signer(b"shared-key")
    frames = theirs.serialize(theirs.msg("execute_request", {"code": "x"}), ident=[b"who"])
    identities, signature, parts = wire.split(frames)
    ours.verify(signature, parts)
    assert identities == [b"who"] and decode(parts).content == {"code": "x"}
    mine = ours.serialize(wire.new_message("kernel_info_request", {}, session="s"))
    _, their_frames = theirs.feed_identities(mine)
    assert theirs.deserialize(their_frames)["header"]["msg_type"] == "kernel_info_request"
