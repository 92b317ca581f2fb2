"""Password hashes (scrypt, from the standard library) and API tokens (random; only their SHA-256 is kept)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's interactive-login cost (RFC 7914 §2): 16 MiB of memory per hash.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024
TOKEN_PREFIX = "jqm_"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # A token has 256 random bits, so a fast hash is enough: there is nothing to guess.
    return hashlib.sha256(token.encode()).hexdigest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
