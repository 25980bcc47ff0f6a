"""The web console's session: a signed cookie naming the access key that signed in, and the CSRF
token bound to it.

The cookie is `v1.<payload>.<mac>`: the payload (base64url JSON) holds the access key id, a
random session id, the issue and expiry times; the MAC is HMAC-SHA256 under a key derived from
the home's console secret and the access key's own secret. So a cookie made by another home,
edited, expired, or of a key removed from the ring (or whose secret changed) reads as no
session. Signing out also ends the session on the server: its id is kept (in memory and in
<home>/console-signed-out, across restarts) until its expiry, so a copy of the cookie kept
elsewhere stops working too."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.api.keys import AccessKey, KeyRing, KeysError
from dockyard.settings import Settings

COOKIE = "dockyard_session"
COOKIE_PATH = "/console"
_VERSION = "v1"
_MAX_COOKIE_CHARS = 2048  # a real one is about 200; longer is not ours, and is not parsed


def console_secret_file(settings: Settings) -> Path:
    return settings.home / "console-secret"


def console_secret(settings: Settings) -> bytes:
    """The home's console secret, made on first use: 32 random bytes (hex) in a 0600 file,
    complete before it can be opened by name (written aside, then linked into place; a process
    that got there first wins and its secret is used)."""
    path = console_secret_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(32) + "\n")
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KeysError(
            f"cannot read the console secret {path} ({exc}); delete it and restart the server "
            "to make a new one (everyone signs in again)"
        ) from None
    if len(secret) < 32:
        raise KeysError(f"{path} holds too short a secret; delete it to get a new one")
    return secret


@dataclass(frozen=True)
class Session:
    access_key_id: str
    user: str
    session_id: str
    issued: int  # seconds since the epoch
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and reads session cookies for the keys of `keys`."""

    def __init__(
        self,
        secret: bytes,
        keys: KeyRing,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
        signed_out_file: Path | None = None,
    ) -> None:
        """`signed_out_file`: where the ids of signed-out sessions are kept (None: in memory
        only)."""
        self._secret = secret
        self._keys = keys
        self.lifetime_seconds = int(lifetime_seconds)
        self._clock = clock
        self._signed_out_file = signed_out_file
        # Session id -> its expiry, for signed-out sessions.
        self._ended: dict[str, int] = _read_signed_out(signed_out_file, clock())
        self._lock = threading.Lock()

    def _mac_key(self, key: AccessKey) -> bytes:
        # The key's secret is part of the MAC key: a new secret for the same key id ends its
        # sessions, as removing the key does.
        secret_digest = hashlib.sha256(key.secret_access_key.encode()).digest()
        return hmac.new(self._secret, b"console-session\0" + secret_digest, "sha256").digest()

    def issue(self, key: AccessKey) -> tuple[Session, str]:
        """A new session for `key`, and its cookie value."""
        now = int(self._clock())
        session = Session(
            key.access_key_id, key.user, secrets.token_urlsafe(18), now, now + self.lifetime_seconds
        )
        payload = _b64(
            json.dumps(
                {"k": session.access_key_id, "s": session.session_id, "i": now,
                 "e": session.expires},
                separators=(",", ":"),
            ).encode()
        )  # fmt: skip
        signed = f"{_VERSION}.{payload}"
        mac = hmac.new(self._mac_key(key), signed.encode(), "sha256").digest()
        return session, f"{signed}.{_b64(mac)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; None for no cookie, or one that is not this server's,
        was changed, has expired, was signed out, or names a key the server no longer has."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        try:
            claims = json.loads(_unb64(parts[1]))
            mac = _unb64(parts[2])
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        key_id, session_id = claims.get("k"), claims.get("s")
        issued, expires = claims.get("i"), claims.get("e")
        if not (isinstance(key_id, str) and isinstance(session_id, str)):
            return None
        if not (isinstance(issued, int) and isinstance(expires, int)):
            return None
        key = self._keys.get(key_id)
        if key is None:
            return None
        expected = hmac.new(self._mac_key(key), f"{parts[0]}.{parts[1]}".encode(), "sha256")
        if not hmac.compare_digest(expected.digest(), mac):
            return None
        now = self._clock()
        if expires <= now:
            return None
        if issued > now + 60 or expires - issued > self.lifetime_seconds:
            return None  # from the future, or longer-lived than this server now allows
        with self._lock:
            if session_id in self._ended:
                return None
        return Session(key_id, key.user, session_id, issued, expires)

    def end(self, session: Session) -> None:
        """Sign out: the session is refused from now on, whoever holds its cookie."""
        now = int(self._clock())
        with self._lock:
            self._ended = {sid: exp for sid, exp in self._ended.items() if exp > now}
            self._ended[session.session_id] = session.expires
            if self._signed_out_file is not None:
                _write_signed_out(self._signed_out_file, self._ended)

    def csrf_token(self, session: Session) -> str:
        """The token state-changing requests of this session carry in X-CSRF-Token."""
        return hmac.new(
            self._secret, b"console-csrf\0" + session.session_id.encode(), "sha256"
        ).hexdigest()

    def csrf_matches(self, session: Session, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.csrf_token(session).encode(), token.encode())


def _read_signed_out(path: Path | None, now: float) -> dict[str, int]:
    """The signed-out sessions not expired yet; a missing or damaged file holds none (its
    sessions then stay valid until they expire, as without the file)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return {}
    ended = {}
    for line in text.splitlines():
        session_id, _, expires = line.partition(" ")
        if session_id and expires.isdigit() and int(expires) > now:
            ended[session_id] = int(expires)
    return ended


def _write_signed_out(path: Path, ended: dict[str, int]) -> None:
    """The whole list, replaced at once (written aside, then renamed over the old one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.writelines(f"{sid} {exp}\n" for sid, exp in ended.items())
    os.replace(tmp, path)
