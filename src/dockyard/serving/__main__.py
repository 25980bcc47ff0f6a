"""``python -m dockyard.serving``: what an image's ``serve`` command runs."""

from .server import serve

raise SystemExit(serve())
