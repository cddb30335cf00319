"""Password hashes: make new ones (argon2) and verify the formats users already have.

Two formats are accepted in `auth.password`:
- `argon2:$argon2id$v=19$m=...,t=...,p=...$salt$hash`, what `nbflask passwd` and Jupyter write;
- `algo:salt:hexdigest`, the legacy form IPython's `passwd()` wrote (sha1 by default, any
  hashlib algorithm works): the digest of the UTF-8 password followed by the salt.
Anything else is treated as a plain-text password, which the configuration refuses. Nothing
here knows about Flask, so the CLI and the config check use it too.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ARGON2_PREFIX = "argon2:"

_hasher = PasswordHasher()


class NotAHash(ValueError):
    """The value is not a password hash in a format nbflask can verify."""


def hash_password(password: str) -> str:
    """A new `argon2:...` hash of `password` (argon2id with a random salt)."""
    if not password:
        raise ValueError("the password must not be empty")
    return ARGON2_PREFIX + _hasher.hash(password)


def _legacy_parts(stored: str) -> tuple[str, str, str]:
    """Split and check `algo:salt:hexdigest`; raise NotAHash with the reason otherwise."""
    parts = stored.split(":")
    if len(parts) != 3:
        raise NotAHash("expected 'argon2:...' or 'algorithm:salt:hexdigest'")
    algorithm, salt, digest = parts
    if algorithm.lower() not in hashlib.algorithms_available:
        raise NotAHash("the text before the first ':' is not a hashlib algorithm")
    if not digest or len(digest) % 2 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise NotAHash("the digest after the second ':' is not hexadecimal")
    size = hashlib.new(algorithm.lower()).digest_size
    if size and len(digest) != 2 * size:
        raise NotAHash(f"a {algorithm} digest has {2 * size} hex digits, found {len(digest)}")
    return algorithm.lower(), salt, digest.lower()


def check_hash(stored: str) -> None:
    """Raise NotAHash (saying why, never echoing the value) unless `stored` is a usable hash."""
    if stored.startswith(ARGON2_PREFIX):
        try:
            extract_parameters(stored[len(ARGON2_PREFIX):])
        except InvalidHashError:
            raise NotAHash("the text after 'argon2:' is not an argon2 hash") from None
        return
    _legacy_parts(stored)


def is_hash(stored: str) -> bool:
    try:
        check_hash(stored)
    except NotAHash:
        return False
    return True


def verify(stored: str, password: str) -> bool:
    """True if `password` matches the hash `stored`; comparisons take constant time."""
    if not stored or not password:
        return False
    if stored.startswith(ARGON2_PREFIX):
        try:
            return _hasher.verify(stored[len(ARGON2_PREFIX):], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    try:
        algorithm, salt, digest = _legacy_parts(stored)
    except NotAHash:
        return False
    hashed = hashlib.new(algorithm, password.encode("utf-8") + salt.encode("utf-8"))
    if hashed.digest_size:
        computed = hashed.hexdigest()
    else:  # shake_* have a caller-chosen length: the stored digest's
        computed = hashed.hexdigest(len(digest) // 2)  # type: ignore[call-arg]
    return hmac.compare_digest(computed.encode(), digest.encode())
