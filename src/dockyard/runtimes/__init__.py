"""Runtimes: read an image, check its RUN lines, and run one host of a job in a sandbox."""
