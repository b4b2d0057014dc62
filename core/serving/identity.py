"""A student's identity across reloads and tabs: a signed token the browser keeps in a cookie.

A browser session is new at every reload, so an id kept in the session alone is lost with it, and
with it the right to stop one's own runs and one's fair share of the queue. The token carries the
student's id and name, signed with the server's secret: a student can neither make up another's
token nor change their id, and a copied link carries none (a cookie is not part of a link). With a
teacher's key the secret is derived from it, so every app server of a class accepts the same token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

COOKIE = "lifecycle_student"
MAX_AGE_S = 30 * 24 * 3600
_PROCESS_SECRET = secrets.token_bytes(32)  # without a key: valid while this server runs


def server_secret(teacher_key: str | None) -> bytes:
    if not teacher_key:
        return _PROCESS_SECRET
    return hashlib.sha256(b"lifecycle student identity\0" + teacher_key.encode("utf-8")).digest()


def new_student() -> str:
    return uuid.uuid4().hex


def sign(student: str, name: str, secret: bytes) -> str:
    """`id.name.signature`, in characters a cookie and a script carry as they are (URL-safe base64)."""
    packed = base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{student}.{packed}.{_signature(student, packed, secret)}"


def verify(token: str | None, secret: bytes) -> tuple[str, str] | None:
    """(id, name) of a token this server (or one with the same key) signed; None for anything else."""
    parts = (token or "").split(".")
    if len(parts) != 3 or len(parts[0]) != 32:
        return None
    student, packed, signature = parts
    if not hmac.compare_digest(signature, _signature(student, packed, secret)):
        return None
    try:
        return student, base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _signature(student: str, packed: str, secret: bytes) -> str:
    return hmac.new(secret, f"{student}.{packed}".encode("ascii", "replace"), hashlib.sha256).hexdigest()
