"""Pure parts of the S3 API: which operation a request is (from botocore's model) and the
aws-chunked decoder fed in any slicing."""

from __future__ import annotations

import pytest

from dockyard.api.aws_chunked import AwsChunkedDecoder
from dockyard.api.s3.app import find_operation
from dockyard.api.sigv4 import IncompleteSignature


@pytest.mark.parametrize(
    ("method", "level", "query", "headers", "operation"),
    [
        ("GET", 0, {}, set(), "ListBuckets"),
        ("GET", 1, {"list-type": "2"}, set(), "ListObjectsV2"),
        ("GET", 1, {"uploads": ""}, set(), "ListMultipartUploads"),
        ("PUT", 2, {}, set(), "PutObject"),
        ("PUT", 2, {}, {"x-amz-copy-source"}, "CopyObject"),
        ("PUT", 2, {"partNumber": "1", "uploadId": "u"}, set(), "UploadPart"),
        ("PUT", 2, {"partNumber": "1", "uploadId": "u"}, {"x-amz-copy-source"}, "UploadPartCopy"),
        ("POST", 2, {"uploads": ""}, set(), "CreateMultipartUpload"),
        ("POST", 2, {"uploadId": "u"}, set(), "CompleteMultipartUpload"),
        ("POST", 1, {"delete": ""}, set(), "DeleteObjects"),
        ("GET", 1, {"acl": ""}, set(), "GetBucketAcl"),
    ],
)
def test_operations_are_read_from_botocores_model(
    method: str, level: int, query: dict[str, str], headers: set[str], operation: str
) -> None:
    assert find_operation(method, level, query, headers) == operation


def test_decoder_takes_any_slicing() -> None:
    wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:abc=\r\n\r\n"
    for step in (1, 2, 3, 7, len(wire)):
        decoder = AwsChunkedDecoder(None, decoded_length=11)
        out = b"".join(decoder.feed(wire[i : i + step]) for i in range(0, len(wire), step))
        decoder.finish()
        assert out == b"hello world", step
        assert decoder.trailers == {"x-amz-checksum-crc32": "abc="}


@pytest.mark.parametrize(
    "wire",
    [
        b"5\r\nhello\r\n",  # no final chunk
        b"zz\r\nhello\r\n0\r\n\r\n",  # not hexadecimal
        b"3\r\nhello\r\n0\r\n\r\n",  # longer than declared
        b"f" * 5000,  # a header line that never ends
        b"0\r\n\r\nextra",  # bytes after the end
    ],
)
def test_decoder_refuses_malformed_bodies(wire: bytes) -> None:
    decoder = AwsChunkedDecoder(None)
    with pytest.raises(IncompleteSignature):
        decoder.feed(wire)
        decoder.finish()
