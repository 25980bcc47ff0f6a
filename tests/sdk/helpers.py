"""What several SDK test modules share: the names the SDK makes, the archives it uploads, and the
HTTP side of the test images that serve."""

from __future__ import annotations

import tarfile

from dockyard.settings import Settings
from dockyard.storage.stores import store_from_settings

DEFAULT_BUCKET = "sagemaker-us-east-1-000000000000"
NAME_STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"

# Program text for a test image that serves as a SageMaker container does: GET /ping answers 200,
# a subclass of Container answers POST /invocations with reply(), serve(handler) runs it. SIGTERM
# exits cleanly from the moment this text has run.
HTTP_CONTAINER = r"""
import http.server, signal, sys
class Container(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200 if self.path == "/ping" else 404, b"", "text/plain")
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
def serve(handler):
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), handler).serve_forever()
"""


def archive_names(uri: str) -> list[str]:
    """The members of a .tar.gz the SDK put into the local object store."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    path = store_from_settings(Settings()).local_path(bucket, key)
    assert path is not None
    with tarfile.open(path) as tar:
        return sorted(tar.getnames())
