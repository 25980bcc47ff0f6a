"""The console's sign-in: the server-rendered form (no script), the check of an access key pair,
the guard against guessing, and where to go afterwards (a local /console page only)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import deque
from collections.abc import Callable
from html import escape
from urllib.parse import quote, unquote, urlsplit

from dockyard.api.keys import AccessKey, KeyRing

HOME = "/console/"
SIGN_IN = "/console/sign-in"
# A form of two short fields: anything longer is not a sign-in.
MAX_FORM_BYTES = 8 * 1024
# Never equal to a real secret: compared against when the key id is unknown, so an unknown
# key id and a wrong secret take the same time.
_NO_SECRET = "\0" * 40


def check_pair(keys: KeyRing, access_key_id: str, secret: str) -> AccessKey | None:
    """The key, when the pair is one of the server's; the secrets compared in constant time."""
    key = keys.get(access_key_id)
    expected = key.secret_access_key if key is not None else _NO_SECRET
    matches = hmac.compare_digest(expected.encode(), secret.encode())
    return key if matches and key is not None else None


class SignInGuard:
    """Slows guessing: every failed sign-in is answered after `delay` seconds (other requests
    go on meanwhile), and a client address with `limit` failures in the last `window` seconds
    is refused (429) until the oldest of them is that old. The server's own keys have 40
    random characters; this is for the ones an operator chose."""

    def __init__(
        self,
        *,
        delay: float = 1.0,
        limit: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.delay = delay
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        failures = self._recent(client)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[0] + self.window - self._clock()) + 1)

    def failed(self, client: str) -> None:
        # Counted before the delay, in the same step as the check (no await between): parallel
        # guesses from one address count exactly.
        self._recent(client).append(self._clock())

    async def pause(self) -> None:
        await asyncio.sleep(self.delay)

    def _recent(self, client: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(self._failures) > 10_000:  # many addresses: forget those with nothing recent
            self._failures = {
                c: f
                for c, f in self._failures.items()
                if c == client or (f and f[-1] > now - self.window)
            }
        return failures


def safe_next(target: str | None) -> str:
    """`target` when it is a page of the console on this server, else the console's home: a
    sign-in link cannot send the user anywhere else (no open redirect)."""
    if not target or len(target) > 2048:
        return HOME
    if any(ord(c) < 0x21 or c in '\\"<>' for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "//" in parts.path:
        return HOME
    if not (parts.path == "/console" or parts.path.startswith("/console/")):
        return HOME
    # Browsers treat %2e%2e as `..`: refuse dot segments, encoded or not.
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return HOME
    if parts.path.startswith(SIGN_IN):
        return HOME
    return target


def sign_in_location(path: str, query: str) -> str:
    """The sign-in page, asked to come back to `path?query` afterwards."""
    back = path + (f"?{query}" if query else "")
    return f"{SIGN_IN}?next={quote(safe_next(back), safe='')}"


def sign_in_page(next_page: str, *, message: str = "", access_key_id: str = "") -> str:
    """The form. `message` (already plain text) says why it is shown again."""
    notice = f'<p class="sign-in-error" role="alert">{escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · dockyard</title>
<link rel="stylesheet" href="/console/static/console.css">
</head>
<body class="sign-in">
<main class="sign-in-box">
<h1>dockyard</h1>
<p>Sign in with an access key of this server.</p>
{notice}
<form method="post" action="{SIGN_IN}">
<input type="hidden" name="next" value="{escape(safe_next(next_page))}">
<label for="access_key_id">Access key id</label>
<input id="access_key_id" name="access_key_id" value="{escape(access_key_id)}"
 autocomplete="username" autocapitalize="off" spellcheck="false" required autofocus>
<label for="secret_access_key">Secret access key</label>
<input id="secret_access_key" name="secret_access_key" type="password"
 autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<p class="sign-in-hint">On the server's machine, <code>dockyard console</code> prints the access
key id and where its secret is; <code>dockyard credentials</code> prints both.</p>
</main>
</body>
</html>
"""


def message_page(title: str, message: str) -> str:
    """A plain page for a console error (not found, bad request)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · dockyard</title>
<link rel="stylesheet" href="/console/static/console.css">
</head>
<body>
<main class="message">
<h1>{escape(title)}</h1>
<p>{escape(message)}</p>
<p><a href="{HOME}">Back to the console</a></p>
</main>
</body>
</html>
"""
