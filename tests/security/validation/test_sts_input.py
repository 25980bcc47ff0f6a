"""Generated STS requests (query protocol: form bodies, query strings, junk) signed for sts:
never a 5xx, and botocore's own query parser reads every answer, errors included."""

from __future__ import annotations

import random
from urllib.parse import quote

from botocore.parsers import QueryParser

from tests.security.validation.conftest import InProcess
from tests.security.validation.fuzz_requests import ODD_TEXT
from tests.security.validation.wire import operation_model, signed_headers

SEED = 10
COUNT = 300
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"))


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return b"Action=GetCallerIdentity&Version=2011-06-15"
    if roll < 0.6:
        action = rng.choice(["AssumeRole", "GetSessionToken", "", "GetCallerIdentity", *ODD_TEXT])
        version = rng.choice(["2011-06-15", "", "1999-01-01", *ODD_TEXT])
        text = f"Action={_quoted(action)}&Version={_quoted(version)}"
        extra = rng.choice(["", "&Action=Other", "&Foo=%ZZ", "&&&=", "&" + "x=1&" * 500])
        return (text + extra).encode()
    if roll < 0.8:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    return b"Action=" + b"A" * rng.choice([10, 70_000])


def test_generated_sts_requests_get_no_5xx(in_process: InProcess) -> None:
    rng = random.Random(SEED)
    api = in_process.api
    model = operation_model("sts", "GetCallerIdentity")
    statuses: dict[int, int] = {}

    async def one() -> None:
        body = _body(rng)
        method = "POST" if rng.random() < 0.9 else "GET"
        query = rng.choice(["", "?Action=GetCallerIdentity&Version=2011-06-15", "?Action=%00"])
        url = f"{api.base_url}/{query}"
        content = body if method == "POST" else b""
        headers = signed_headers(
            api.credentials, "sts", method, url, content, {"Content-Type": FORM}
        )
        response = await api.client.request(method, url, content=content, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (body[:200], response.content[:300])
        parsed = QueryParser().parse(
            {"status_code": response.status_code, "headers": dict(response.headers),
             "body": response.content},
            model.output_shape,
        )  # fmt: skip
        if response.status_code == 200:
            assert parsed["Account"] == "000000000000", parsed
        else:
            assert parsed["Error"]["Code"] and parsed["Error"]["Message"], response.content[:300]
        assert response.headers["x-amzn-requestid"]

    for _ in range(COUNT):
        api.run(one())
    assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 50, statuses
