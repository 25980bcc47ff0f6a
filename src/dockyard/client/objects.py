"""The object store as the faces (CLI, SDK) reach it: dockyard's S3 API through boto3's s3 client,
signed with the client's keys, so they work against a server elsewhere with nothing shared but the
URL and the keys. Transfers are boto3's own (multipart and threads above 8 MiB)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from dockyard.storage.objects import ObjectInfo, plan_prefix_download

_ALREADY_THERE = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class ApiObjects:
    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def list_buckets(self) -> list[str]:
        return [bucket["Name"] for bucket in self.s3.list_buckets().get("Buckets", [])]

    def create_bucket(self, bucket: str) -> None:
        """Make the bucket unless it is there (as S3 in us-east-1, making it again is no error)."""
        try:
            self.s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _ALREADY_THERE:
                raise

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            yield from map(_info, page.get("Contents", []))

    def list_folders(self, bucket: str, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        """The common prefixes one level below `prefix` and the objects at that level."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        folders: list[str] = []
        objects: list[ObjectInfo] = []
        for page in pages:
            folders += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
            objects += map(_info, page.get("Contents", []))
        return folders, objects

    def put_file(self, bucket: str, key: str, path: Path, *, move: bool = False) -> None:
        """Upload the file; with `move=True` it is removed afterwards (the caller's scratch)."""
        self.s3.upload_file(str(path), bucket, key)
        if move:
            path.unlink(missing_ok=True)

    def get_file(self, bucket: str, key: str, dest: Path) -> None:
        """Download to `dest` whole or not at all (a partial download never takes its name)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.dockyard-partial")
        try:
            self.s3.download_file(bucket, key, str(partial))
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)

    def get_prefix(self, bucket: str, prefix: str, dest_dir: Path) -> list[Path]:
        """Every object under `prefix` into `dest_dir`, key paths kept relative to the prefix's
        folder (the same plan the server's store uses); the files written, in key order."""
        plan = plan_prefix_download(prefix, self.list_objects(bucket, prefix), dest_dir)
        root = dest_dir.resolve()
        written = []
        for info, target in plan:
            if not target.resolve().is_relative_to(root):
                # Keys come from the server: one with `..` must not write outside the folder.
                raise ValueError(f"object {info.key!r} would land outside {dest_dir}")
            self.get_file(bucket, info.key, target)
            written.append(target)
        return written


def _info(item: dict[str, Any]) -> ObjectInfo:
    """One entry of a ListObjectsV2 page."""
    return ObjectInfo(item["Key"], item["Size"], item["LastModified"], item["ETag"])
