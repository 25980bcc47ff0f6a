"""GetObject's body sent from a real file: whole, a span over several pieces, a file cut short
under it, and a client gone mid-body (the reads stop)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.api.s3 import file_response
from dockyard.api.s3.file_response import FileSpanResponse

PIECE = 1024


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_response, "PIECE_BYTES", PIECE)


def _serve(
    path: Path, start: int, length: int, *, gone_after: int | None = None
) -> tuple[list[dict[str, Any]], FileSpanResponse]:
    """Run the response; the client goes away once it has `gone_after` body messages."""
    source = path.open("rb")
    response = FileSpanResponse(source, start, length, 200, {"Content-Length": str(length)})
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        disconnected = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            bodies = [m for m in sent if m["type"] == "http.response.body"]
            if gone_after is not None and len(bodies) >= gone_after:
                disconnected.set()
                await asyncio.sleep(0)  # the watcher sees it before the next piece is read

        await response({"type": "http", "method": "GET"}, receive, send)

    asyncio.run(run())
    return sent, response


def _body(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_one_piece_is_one_send(tmp_path: Path) -> None:
    data = os.urandom(PIECE)
    (tmp_path / "object").write_bytes(data)
    sent, response = _serve(tmp_path / "object", 0, PIECE)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and (b"content-length", b"1024") in sent[0]["headers"]
    assert _body(sent) == data and not sent[-1].get("more_body", False)
    assert response.source.closed


def test_a_span_over_several_pieces(tmp_path: Path) -> None:
    data = os.urandom(5 * PIECE + 17)
    (tmp_path / "object").write_bytes(data)
    sent, response = _serve(tmp_path / "object", 100, 3 * PIECE + 5)
    assert _body(sent) == data[100 : 100 + 3 * PIECE + 5]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, True, False]
    assert response.source.closed


def test_an_empty_object(tmp_path: Path) -> None:
    (tmp_path / "object").write_bytes(b"")
    sent, response = _serve(tmp_path / "object", 0, 0)
    assert _body(sent) == b"" and response.source.closed


def test_a_file_cut_short_ends_the_body_early(tmp_path: Path) -> None:
    data = os.urandom(2 * PIECE + 10)
    (tmp_path / "object").write_bytes(data)
    sent, response = _serve(tmp_path / "object", 0, 4 * PIECE)  # announced longer than it is
    assert _body(sent) == data  # what there is, nothing else, and the body ends
    assert not sent[-1].get("more_body", False)
    assert response.source.closed


def test_reads_stop_once_the_client_is_gone(tmp_path: Path) -> None:
    data = os.urandom(50 * PIECE)
    (tmp_path / "object").write_bytes(data)
    sent, response = _serve(tmp_path / "object", 0, 50 * PIECE, gone_after=2)
    assert len(_body(sent)) <= 4 * PIECE  # not the 50 pieces
    assert response.source.closed
