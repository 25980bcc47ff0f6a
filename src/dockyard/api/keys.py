"""The access keys of the server's users: read from settings and AWS-style credentials files,
made once for the embedded server, and looked up by the faces that sign requests."""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import ipaddress
import logging
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.contract.errors import DockyardError
from dockyard.settings import Settings

log = logging.getLogger(__name__)

# The user name of the pair in DOCKYARD_ACCESS_KEY_ID / DOCKYARD_SECRET_ACCESS_KEY and of the
# pair the embedded server makes: `[default]` also lets boto3 read the generated file as is
# (AWS_SHARED_CREDENTIALS_FILE=$DOCKYARD_HOME/credentials).
DEFAULT_USER = "default"
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"  # AWS key ids are base32-ish upper case


class KeysError(DockyardError):
    """The keys are misconfigured: the server cannot start, or a face cannot sign."""

    code = "KeysError"


@dataclass(frozen=True)
class AccessKey:
    user: str
    access_key_id: str
    secret_access_key: str = field(repr=False)


class KeyRing:
    """The key pairs a server accepts, by access key id."""

    def __init__(self, keys: list[AccessKey]) -> None:
        self._by_id: dict[str, AccessKey] = {}
        for key in keys:
            known = self._by_id.get(key.access_key_id)
            if known is not None and known.secret_access_key != key.secret_access_key:
                raise KeysError(
                    f"access key id {key.access_key_id} is given twice with different secrets "
                    f"(users {known.user} and {key.user}): give each user their own key id"
                )
            self._by_id[key.access_key_id] = key

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, access_key_id: str) -> AccessKey | None:
        return self._by_id.get(access_key_id)

    def users(self) -> list[str]:
        return sorted({key.user for key in self._by_id.values()})


def home_credentials_file(settings: Settings) -> Path:
    return settings.home / "credentials"


def read_credentials_file(path: Path) -> list[AccessKey]:
    """Every section with aws_access_key_id and aws_secret_access_key, as a user of that name."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none")
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise KeysError(f"cannot read the keys file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeysError(f"the keys file {path} is not UTF-8 text") from None
    except configparser.Error as exc:
        raise KeysError(
            f"the keys file {path} is not in the AWS credentials format "
            f"([user] sections with aws_access_key_id and aws_secret_access_key): {exc.message}"
        ) from None
    keys = []
    for user in parser.sections():
        section = parser[user]
        key_id = section.get("aws_access_key_id", "").strip()
        secret = section.get("aws_secret_access_key", "").strip()
        if not key_id or not secret:
            raise KeysError(
                f"section [{user}] of the keys file {path} needs both aws_access_key_id and "
                "aws_secret_access_key"
            )
        keys.append(AccessKey(user, key_id, secret))
    return keys


def configured_keys(settings: Settings) -> list[AccessKey]:
    """The pairs an operator configured: the settings' pair and the keys file's users."""
    keys = []
    pair = settings_key(settings)
    if pair is not None:
        keys.append(pair)
    if settings.keys_file is not None:
        from_file = read_credentials_file(settings.keys_file)
        if not from_file:
            raise KeysError(f"the keys file {settings.keys_file} names no user")
        keys.extend(from_file)
    return keys


def settings_key(settings: Settings) -> AccessKey | None:
    secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else ""
    if bool(settings.access_key_id) != bool(secret):
        raise KeysError(
            "set both DOCKYARD_ACCESS_KEY_ID and DOCKYARD_SECRET_ACCESS_KEY, or neither"
        )
    if not settings.access_key_id:
        return None
    return AccessKey(DEFAULT_USER, settings.access_key_id, secret)


def keys_configured(settings: Settings) -> bool:
    return bool(settings.access_key_id) or settings.keys_file is not None


def ensure_home_key(settings: Settings) -> AccessKey:
    """The pair in <home>/credentials, made on first use: 0600 from its first byte, complete
    before anyone can open it by name (written under a temporary name, then linked into place,
    which fails if another process got there first — then theirs is used)."""
    path = home_credentials_file(settings)
    if not path.exists():
        _create_home_credentials(path)
    keys = read_credentials_file(path)
    if len(keys) != 1:
        raise KeysError(f"{path} must hold exactly one key pair; delete it to get a new one")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users: chmod 600 it", path)
    return keys[0]


def _create_home_credentials(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id = "DKYD" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = secrets.token_urlsafe(30)  # 40 characters, as AWS secrets have
    text = (
        "# The key pair of this DOCKYARD_HOME's dockyard server, made on its first start.\n"
        "# `dockyard credentials` prints it for boto3, the aws CLI and the SageMaker SDK.\n"
        f"[{DEFAULT_USER}]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def server_keys(settings: Settings) -> KeyRing:
    """What the server accepts: the configured pairs, or else the home's own pair."""
    keys = configured_keys(settings) or [ensure_home_key(settings)]
    return KeyRing(keys)


def face_key(settings: Settings) -> AccessKey:
    """The pair dockyard's own faces sign with: the settings' pair, else the home's file."""
    pair = settings_key(settings)
    if pair is not None:
        return pair
    path = home_credentials_file(settings)
    if path.exists():
        keys = read_credentials_file(path)
        if keys:
            return keys[0]
    raise KeysError(
        "no access key to sign requests with: set DOCKYARD_ACCESS_KEY_ID and "
        "DOCKYARD_SECRET_ACCESS_KEY to a key pair of the server's operator (a local server "
        f"makes its own in {path} on first start)"
    )


def home_id(home: Path) -> str:
    """Names a DOCKYARD_HOME without revealing its path (GET /healthz tells it to anyone)."""
    return hashlib.sha256(str(home).encode()).hexdigest()[:16]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """A server others can reach must have keys its operator chose (not the generated pair,
    which sits in a file only this machine's user can read)."""
    if is_loopback(settings.host) or keys_configured(settings):
        return
    raise KeysError(
        f"refusing to listen on {settings.host}: a server reachable from other machines needs "
        "access keys. Set DOCKYARD_ACCESS_KEY_ID and DOCKYARD_SECRET_ACCESS_KEY (one user), or "
        "DOCKYARD_KEYS_FILE (an AWS-style credentials file, one [user] section each with "
        "aws_access_key_id and aws_secret_access_key), or listen on 127.0.0.1"
    )
