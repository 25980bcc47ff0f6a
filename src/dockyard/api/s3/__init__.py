"""The S3 API (REST-XML; path-style and `<bucket>.localhost` addressing) over the object store."""
