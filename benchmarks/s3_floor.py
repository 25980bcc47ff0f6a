"""The client's floor for S3 PUTs: a stand-in that takes S3 uploads (PutObject and multipart)
and throws their bodies away, run as `python s3_floor.py PORT`. What boto3 reaches against it is
the most any S3 server can reach with boto3 on this machine."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

INITIATED = (
    b'<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>'
    b"<Bucket>bench</Bucket><Key>k</Key><UploadId>floor</UploadId></InitiateMultipartUploadResult>"
)
COMPLETED = (
    b'<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult>'
    b'<ETag>"00000000000000000000000000000000-1"</ETag></CompleteMultipartUploadResult>'
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read and drop the body
        more = (await receive()).get("more_body", False)
    query = scope.get("query_string", b"")
    body = b""
    if scope["method"] == "POST":
        body = INITIATED if b"uploads" in query else COMPLETED
    headers = [
        (b"etag", b'"00000000000000000000000000000000"'),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
