"""A student's identity across reloads and tabs: a signed token the browser keeps in a cookie.

A browser session is new at every reload, so an id kept in the session alone is lost with it, and
with it the right to stop one's own runs and one's fair share of the queue. The token carries the
student's id and name, signed with the server's secret: a student can neither make up another's
token nor change their id, and a copied link carries none (a cookie is not part of a link).

The secret is random and never leaves the server (a secret derived from the teacher's key would let a
student test guesses of the key against their own token, offline and at any speed). It is
$LIFECYCLE_IDENTITY_SECRET when set (the same value on every app server of a class, so each accepts
the others' tokens), else kept in `runs/.identity_secret`, which every server on this machine shares
and which survives a restart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path

from core.project import ROOT

COOKIE = "lifecycle_student"
MAX_AGE_S = 30 * 24 * 3600
SECRET_ENV = "LIFECYCLE_IDENTITY_SECRET"
SECRET_FILE = ROOT / "runs" / ".identity_secret"


def server_secret() -> bytes:
    own = os.environ.get(SECRET_ENV)
    return own.encode("utf-8") if own else _kept_secret(SECRET_FILE)


@functools.lru_cache(maxsize=4)
def _kept_secret(path: Path) -> bytes:
    """The secret in `path`, made there (readable by this user alone) the first time; a folder that cannot
    be written gives a secret of this process's own (tokens then last until the server restarts)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    except OSError:
        return secrets.token_bytes(32)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        return secrets.token_bytes(32)


def new_student() -> str:
    return uuid.uuid4().hex


def sign(student: str, name: str, secret: bytes) -> str:
    """`id.name.signature`, in characters a cookie and a script carry as they are (URL-safe base64)."""
    packed = base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{student}.{packed}.{_signature(student, packed, secret)}"


def verify(token: str | None, secret: bytes) -> tuple[str, str] | None:
    """(id, name) of a token this server (or one with the same key) signed; None for anything else."""
    parts = (token or "").split(".")
    if len(parts) != 3 or len(parts[0]) != 32 or not (token or "").isascii():  # compare_digest takes ASCII only
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
