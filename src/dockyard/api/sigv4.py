"""AWS Signature Version 4, checked: what a request claims (the Authorization header or the
presigned query), the checks its head allows (key, scope, clock), and the signature recomputed
with botocore's own signer and compared in constant time."""

from __future__ import annotations

import functools
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from types import MappingProxyType
from urllib.parse import parse_qsl

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from botocore.exceptions import InvalidRegionError
from botocore.utils import validate_region_name
from starlette.types import Scope

from dockyard.api.keys import AccessKey, KeyRing
from dockyard.contract.errors import DockyardError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
MAX_PRESIGNED_EXPIRES_SECONDS = 7 * 24 * 3600  # AWS's limit for X-Amz-Expires
EMPTY_SHA256 = sha256(b"").hexdigest()

_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_QUERY_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


# -- refusals -------------------------------------------------------------------------------


class AuthError(DockyardError):
    """A request that is not signed by a known key: always 403, whatever the API."""

    @property
    def http_status(self) -> int:
        return 403


class MissingAuthenticationToken(AuthError):
    code = "MissingAuthenticationTokenException"

    def __init__(self) -> None:
        super().__init__(
            "Missing Authentication Token: dockyard accepts only requests signed with AWS "
            "Signature Version 4 (boto3, the aws CLI, the SageMaker SDK); `dockyard credentials` "
            "prints the keys of the local server"
        )


class UnrecognizedClient(AuthError):
    code = "UnrecognizedClientException"


class InvalidSignature(AuthError):
    code = "InvalidSignatureException"


class SignatureExpired(InvalidSignature):
    """Signed too long ago (or a presigned URL past its X-Amz-Expires)."""


class PayloadHashMismatch(InvalidSignature):
    """The body is not the one whose SHA-256 x-amz-content-sha256 names."""


class IncompleteSignature(AuthError):
    code = "IncompleteSignatureException"


SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY = "The security token included in the request is invalid."


# -- what a request claims ------------------------------------------------------------------


@dataclass(frozen=True)
class RequestHead:
    """The parts of an HTTP request a signature covers, as they came over the wire."""

    method: str
    path: str  # percent-encoded, as sent
    query: str  # as sent
    headers: list[tuple[str, str]]  # names lower-case

    @classmethod
    def from_scope(cls, scope: Scope) -> RequestHead:
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        return cls(
            scope["method"],
            path,
            scope.get("query_string", b"").decode("latin-1"),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        )

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def has_body(self) -> bool:
        """HTTP/1.1: a body comes only with Content-Length (not 0) or Transfer-Encoding."""
        length = self.header("content-length")
        return self.header("transfer-encoding") is not None or (
            length is not None and length.strip() != "0"
        )


@dataclass(frozen=True)
class Claim:
    """What a request says about its signature, before anything is checked."""

    access_key_id: str
    timestamp: str  # X-Amz-Date: 20240101T120000Z
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    expires: int | None  # presigned only
    canonical_query: str  # the query that was signed (without X-Amz-Signature)

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def parse_claim(head: RequestHead) -> Claim:
    authorization = head.header("authorization")
    params = _query_params(head.query) if "X-Amz-" in head.query else {}
    presigned = any(key in params for key in _QUERY_AUTH_PARAMS)
    if authorization is not None and presigned:
        raise IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
            "Authorization header should be specified"
        )
    if presigned:
        return _query_claim(head, params)
    if authorization is None:
        raise MissingAuthenticationToken()
    return _header_claim(head, authorization)


def _header_claim(head: RequestHead, authorization: str) -> Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(
            f"Authorization header must start with {ALGORITHM} (AWS Signature Version 4): "
            "dockyard accepts no other signing method"
        )
    params = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            params[key] = value.strip()
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    timestamp = head.header("x-amz-date")
    if timestamp is None:
        missing.append("Authorization header requires existence of a 'X-Amz-Date' header.")
    if missing:
        raise IncompleteSignature(" ".join(missing))
    assert timestamp is not None
    return _claim(
        params["Credential"], timestamp, params["SignedHeaders"], params["Signature"], None, head
    )


@functools.lru_cache(maxsize=256)
def _query_params(query: str) -> Mapping[str, str]:
    """The query's parameters (read-only). Cached: a presigned URL is made to be used again and
    again, and parsing it was a third of the check's cost."""
    return MappingProxyType(dict(parse_qsl(query, keep_blank_values=True)))


def _query_claim(head: RequestHead, params: Mapping[str, str]) -> Claim:
    missing = [
        f"AWS query-string parameters must include '{name}'."
        for name in _QUERY_AUTH_PARAMS
        if not params.get(name)
    ]
    if missing:
        raise IncompleteSignature(" ".join(missing) + " Re-examine the query-string parameters.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm must be {ALGORITHM}")
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGNED_EXPIRES_SECONDS:
        raise IncompleteSignature(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECONDS}"
        )
    return _claim(
        params["X-Amz-Credential"],
        params["X-Amz-Date"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        int(expires),
        head,
    )


def _claim(
    credential: str,
    timestamp: str,
    signed_headers: str,
    signature: str,
    expires: int | None,
    head: RequestHead,
) -> Claim:
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise IncompleteSignature(
            f"Credential must be <access key id>/<date>/<region>/<service>/aws4_request, not "
            f"'{credential}'"
        )
    key_id, date, region, service, terminator = parts
    if not _AMZ_DATE.match(timestamp):
        raise IncompleteSignature(
            f"X-Amz-Date must be a UTC time in ISO 8601 basic form (20240101T120000Z), not "
            f"'{timestamp}'"
        )
    if date != timestamp[:8]:
        raise IncompleteSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    try:
        validate_region_name(region)  # any region, as long as botocore could have signed it
        valid_region = bool(region)
    except InvalidRegionError:
        valid_region = False
    if not valid_region:
        raise IncompleteSignature("Credential should be scoped to a valid region.")
    if not _SERVICE.match(service):
        raise IncompleteSignature("Credential should be scoped to a valid service.")
    if terminator != "aws4_request":
        raise IncompleteSignature(
            "Credential should be scoped with a valid terminator: 'aws4_request', not "
            f"'{terminator}'."
        )
    names = tuple(signed_headers.split(";"))
    if "host" not in names:
        raise IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    carried = {name for name, _ in head.headers}
    absent = [name for name in names if name not in carried]
    if absent:
        raise IncompleteSignature(
            f"SignedHeaders names {', '.join(absent)}, which the request does not carry"
        )
    for name in sorted(carried):
        if name.startswith(("x-amz-", "x-amzn-sagemaker-")) and name not in names:
            # A presigned URL with an unsigned X-Amz-Target could be replayed as any operation.
            raise IncompleteSignature(
                f"header {name} is not signed: every x-amz-* header must be in SignedHeaders"
            )
    query = head.query
    if expires is not None:
        query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    return Claim(key_id, timestamp, region, service, names, signature, expires, query)


# -- checking it ----------------------------------------------------------------------------


class _SignedHeadersOf:
    """botocore's canonicalization, told which headers the client signed and the body's hash
    (botocore's signer picks the headers itself and hashes the body it holds)."""

    def __init__(self, key: AccessKey, check: Check, payload_hash: str) -> None:
        credentials = Credentials(key.access_key_id, key.secret_access_key)
        claim = check.claim
        super().__init__(credentials, claim.service, claim.region)  # type: ignore[call-arg]
        self._signed = set(claim.signed_headers)
        self._secret = key.secret_access_key
        self._claim = claim
        self._head = check.head
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        selected = HTTPHeaders()
        for name, value in self._head.headers:
            if name in self._signed:
                selected[name] = value
        return selected

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        # botocore derives the signing key (four HMACs) on every call; it depends only on the
        # secret, the day, the region and the service, so it is derived once a day instead.
        day = request.context["timestamp"][:8]
        key = _signing_key(self._secret, day, self._claim.region, self._claim.service)
        return hmac.new(key, string_to_sign.encode("utf-8"), sha256).hexdigest()


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4's derived key (as botocore's SigV4Auth.signature derives it)."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), sha256).digest()
    return key


class _HeaderSignature(_SignedHeadersOf, SigV4Auth):
    pass


class _QuerySignature(_SignedHeadersOf, SigV4QueryAuth):
    pass


# S3 signs the path as sent (no normalization, no second round of percent-encoding).
class _S3HeaderSignature(_SignedHeadersOf, S3SigV4Auth):
    pass


class _S3QuerySignature(_SignedHeadersOf, S3SigV4QueryAuth):
    pass


_SIGNERS = {
    (False, False): _HeaderSignature,
    (True, False): _QuerySignature,
    (False, True): _S3HeaderSignature,
    (True, True): _S3QuerySignature,
}


@dataclass(frozen=True)
class Check:
    """A request whose head passed: a known key, a fresh date. Its signature is next."""

    head: RequestHead
    claim: Claim
    key: AccessKey

    @property
    def user(self) -> str:
        return self.key.user

    @property
    def content_sha256(self) -> str | None:
        return self.head.header("x-amz-content-sha256")

    @property
    def scope(self) -> str:
        """The credential scope: <date>/<region>/<service>/aws4_request."""
        claim = self.claim
        return f"{claim.timestamp[:8]}/{claim.region}/{claim.service}/aws4_request"

    def signing_key(self) -> bytes:
        """The derived key that signed the request (and signs an aws-chunked body's chunks)."""
        claim = self.claim
        return _signing_key(
            self.key.secret_access_key, claim.timestamp[:8], claim.region, claim.service
        )

    def verify(self, payload_hash: str) -> None:
        """Recompute the signature over the request and the body's SHA-256 (hex)."""
        signer_class = _SIGNERS[self.claim.presigned, self.claim.service == "s3"]
        signer = signer_class(self.key, self, payload_hash)
        request = AWSRequest(
            method=self.head.method,
            url=f"http://dockyard{self.head.path}?{self.claim.canonical_query}",
        )
        if self.content_sha256 is not None:  # botocore signs this header's value, if present
            request.headers["X-Amz-Content-SHA256"] = self.content_sha256
        request.context["timestamp"] = self.claim.timestamp
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected.encode(), self.claim.signature.encode("latin-1")):
            raise InvalidSignature(SIGNATURE_MISMATCH)


class Authenticator:
    """Checks requests against a key ring."""

    def __init__(self, keys: KeyRing, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.clock = clock

    def check_head(
        self,
        head: RequestHead,
        expected_service: str | None,
        payload_modes: frozenset[str] = frozenset(),
    ) -> Check:
        """Everything but the signature itself (see Check.verify). `expected_service`: the
        signing name of the API the request is for (None: no API dockyard serves)."""
        return self.check_claim(head, parse_claim(head), expected_service, payload_modes)

    def check_claim(
        self,
        head: RequestHead,
        claim: Claim,
        expected_service: str | None,
        payload_modes: frozenset[str] = frozenset(),
    ) -> Check:
        """check_head for a claim already parsed. `payload_modes`: the x-amz-content-sha256
        values other than a hex hash the API takes (S3's UNSIGNED-PAYLOAD, streaming forms)."""
        if expected_service is not None and claim.service != expected_service:
            raise IncompleteSignature(
                f"Credential should be scoped to correct service: '{expected_service}'."
            )
        key = self.keys.get(claim.access_key_id)
        if key is None:
            raise UnrecognizedClient(UNKNOWN_KEY)
        if head.header("x-amz-security-token") is not None or "X-Amz-Security-Token=" in (
            head.query
        ):
            raise UnrecognizedClient(
                f"{UNKNOWN_KEY} dockyard issues no session tokens: sign with the key pair alone "
                "(unset AWS_SESSION_TOKEN)"
            )
        self._check_time(claim)
        content_sha256 = head.header("x-amz-content-sha256")
        if (
            content_sha256 is not None
            and not _HEX_SHA256.match(content_sha256)
            and content_sha256 not in payload_modes
        ):
            # UNSIGNED-PAYLOAD and streaming chunk signatures are S3's; other APIs refuse them.
            raise IncompleteSignature(
                f"x-amz-content-sha256 must be the hex SHA-256 of the body, not {content_sha256}"
            )
        return Check(head, claim, key)

    def _check_time(self, claim: Claim) -> None:
        signed_at = _epoch(claim.timestamp)
        now = self.clock()
        if claim.expires is not None and now > signed_at + claim.expires:
            raise SignatureExpired(
                f"Signature expired: the presigned request was valid until "
                f"{_amz_date(signed_at + claim.expires)} (X-Amz-Date {claim.timestamp} plus "
                f"X-Amz-Expires {claim.expires} s); now is {_amz_date(now)}. Presign it again."
            )
        if claim.expires is None and signed_at < now - MAX_CLOCK_SKEW_SECONDS:
            raise SignatureExpired(
                f"Signature expired: {claim.timestamp} is now earlier than "
                f"{_amz_date(now - MAX_CLOCK_SKEW_SECONDS)} ({_amz_date(now)} - 15 min.)"
            )
        if signed_at > now + MAX_CLOCK_SKEW_SECONDS:
            raise SignatureExpired(
                f"Signature not yet current: {claim.timestamp} is still later than "
                f"{_amz_date(now + MAX_CLOCK_SKEW_SECONDS)} ({_amz_date(now)} + 15 min.)"
            )


def _epoch(timestamp: str) -> float:
    """20240101T120000Z (already matched by _AMZ_DATE) as seconds since the epoch."""
    t = timestamp
    try:
        moment = datetime(
            int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]), int(t[13:15]),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise IncompleteSignature(f"X-Amz-Date {timestamp} is not a valid time") from None
    return moment.timestamp()


def _amz_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")
