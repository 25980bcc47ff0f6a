"""Object stores behind s3:// URIs: a local directory or any S3-compatible service."""
