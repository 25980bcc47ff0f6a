"""The one contract every object store keeps, run against each adapter, plus what is particular
to the local store (atomic files, zero-copy paths) and the S3 store (the ETag-keyed cache)."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.contract.errors import NoSuchBucket, NoSuchKey, StorageError, ValidationError
from dockyard.storage.local_store import LocalObjectStore
from dockyard.storage.objects import (
    ObjectInfo,
    ObjectStore,
    key_relative_to_prefix,
    plan_prefix_download,
)
from dockyard.storage.s3_store import S3ObjectStore
from dockyard.storage.stores import open_object_store

MIB = 1024 * 1024


def unique_bucket() -> str:
    return f"dy-{uuid.uuid4().hex[:16]}"


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, by "/"-separated relative path."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


class ProgressTotal:
    """A thread-safe Progress callback that adds up what it is told."""

    def __init__(self) -> None:
        self.total = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self._lock:
            self.total += count
            self.calls += 1


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_object_store("local", root=tmp_path / "objects")
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("moto_credentials")
    return open_object_store("s3", root=tmp_path / "unused", endpoint_url=endpoint)


@pytest.fixture
def bucket(store: ObjectStore) -> str:
    name = unique_bucket()
    store.create_bucket(name)
    return name


# -- the contract: buckets -------------------------------------------------------------------


def test_create_bucket_is_idempotent_and_listed(store: ObjectStore) -> None:
    first, second = sorted([unique_bucket(), unique_bucket()])
    assert not store.bucket_exists(first)
    store.create_bucket(second)
    store.create_bucket(first)
    store.create_bucket(first)
    assert store.bucket_exists(first)
    assert store.bucket_exists(second)
    names = store.list_buckets()
    assert {first, second} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["Bad_Bucket", "ab", "-bucket", ".tmp"])
def test_invalid_bucket_names_are_rejected(store: ObjectStore, name: str) -> None:
    with pytest.raises(ValidationError, match="bucket name"):
        store.create_bucket(name)
    with pytest.raises(ValidationError):
        store.put_bytes(name, "k", b"x")


# -- the contract: objects -------------------------------------------------------------------


def test_put_bytes_then_get_and_head(store: ObjectStore, bucket: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.put_bytes(bucket, "hello.txt", b"hello, world")
    assert store.get_bytes(bucket, "hello.txt") == b"hello, world"
    info = store.head(bucket, "hello.txt")
    assert info.key == "hello.txt"
    assert info.size == 12
    assert info.last_modified.tzinfo is not None
    assert info.last_modified.utcoffset() == timedelta(0)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert info.etag.startswith('"') and info.etag.endswith('"') and len(info.etag) > 2


def test_empty_object(store: ObjectStore, bucket: str) -> None:
    store.put_bytes(bucket, "empty", b"")
    assert store.head(bucket, "empty").size == 0
    assert store.get_bytes(bucket, "empty") == b""


def test_put_file_then_get_file(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    source.write_bytes(b"a,b\n1,2\n")
    store.put_file(bucket, "data/in.csv", source)
    assert source.exists()  # copied, not moved
    dest = tmp_path / "out" / "deeper" / "in.csv"
    store.get_file(bucket, "data/in.csv", dest)
    assert dest.read_bytes() == b"a,b\n1,2\n"
    assert store.head(bucket, "data/in.csv").size == 8
    # No temp files are left beside the destination.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["in.csv"]


def test_get_file_replaces_an_existing_file(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    store.put_bytes(bucket, "k", b"new")
    dest = tmp_path / "dest"
    dest.write_bytes(b"old and longer")
    store.get_file(bucket, "k", dest)
    assert dest.read_bytes() == b"new"


def test_put_file_with_move_consumes_the_source(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"tarball")
    progress = ProgressTotal()
    store.put_file(bucket, "out/model.tar.gz", source, move=True, progress=progress)
    assert not source.exists()
    assert store.get_bytes(bucket, "out/model.tar.gz") == b"tarball"
    assert progress.total == 7


def test_put_stream_stores_an_opened_file_from_where_it_is(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "checkpoint.bin"
    source.write_bytes(b"header|" + b"weights")
    with source.open("rb") as opened:
        opened.seek(len(b"header|"))
        store.put_stream(bucket, "ckpt/step-1.bin", opened)
    assert store.get_bytes(bucket, "ckpt/step-1.bin") == b"weights"
    with (tmp_path / "empty").open("wb"), (tmp_path / "empty").open("rb") as empty:
        store.put_stream(bucket, "ckpt/empty", empty)
    assert store.head(bucket, "ckpt/empty").size == 0


def test_put_stream_of_20_mib_with_progress_and_from_a_pipe(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(20 * MIB + 5)  # multipart for S3
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    uploaded = ProgressTotal()
    with source.open("rb") as opened:
        store.put_stream(bucket, "big.bin", opened, progress=uploaded)
    assert uploaded.total == len(data)
    assert hashlib.sha256(store.get_bytes(bucket, "big.bin")).digest() == (
        hashlib.sha256(data).digest()
    )
    # A stream that can't seek (a pipe) works too.
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: _write_and_close(write_end, data[: 3 * MIB]))
    writer.start()
    with os.fdopen(read_end, "rb") as pipe:
        store.put_stream(bucket, "piped.bin", pipe)
    writer.join()
    assert store.get_bytes(bucket, "piped.bin") == data[: 3 * MIB]


def _write_and_close(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def test_overwrite_replaces_content_and_etag(store: ObjectStore, bucket: str) -> None:
    store.put_bytes(bucket, "k", b"one")
    first = store.head(bucket, "k")
    store.put_bytes(bucket, "k", b"three")
    second = store.head(bucket, "k")
    assert store.get_bytes(bucket, "k") == b"three"
    assert second.size == 5
    assert second.etag != first.etag


def test_nested_and_unicode_keys(store: ObjectStore, bucket: str) -> None:
    keys = ["a/b/c/d.txt", "données/ünï côdé.txt", "x y/z.csv", ".hidden/.file"]
    for key in keys:
        store.put_bytes(bucket, key, key.encode())
    assert [info.key for info in store.list_objects(bucket)] == sorted(keys)
    for key in keys:
        assert store.get_bytes(bucket, key) == key.encode()


def test_list_objects_is_recursive_sorted_and_filtered_by_prefix(
    store: ObjectStore, bucket: str
) -> None:
    sizes = {
        "b.txt": 1,
        "a/z.txt": 2,
        "a-b.txt": 3,  # "-" sorts before "/": a-b.txt comes before a/...
        "a/b/c.txt": 4,
        "data/train/x.csv": 5,
        "data/train-01/y.csv": 6,
        "data/test/z.csv": 7,
    }
    for key, size in sizes.items():
        store.put_bytes(bucket, key, b"x" * size)

    listed = list(store.list_objects(bucket))
    assert [info.key for info in listed] == sorted(sizes)
    assert {info.key: info.size for info in listed} == sizes
    assert all(isinstance(info, ObjectInfo) for info in listed)

    def keys(prefix: str) -> list[str]:
        return [info.key for info in store.list_objects(bucket, prefix)]

    assert keys("data/train") == ["data/train-01/y.csv", "data/train/x.csv"]
    assert keys("data/train/") == ["data/train/x.csv"]
    assert keys("a/") == ["a/b/c.txt", "a/z.txt"]
    assert keys("a") == ["a-b.txt", "a/b/c.txt", "a/z.txt"]
    assert keys("data/t") == ["data/test/z.csv", "data/train-01/y.csv", "data/train/x.csv"]
    assert keys("b.txt") == ["b.txt"]
    assert keys("nothing") == []
    assert keys("a/b/c.txt/more") == []


def test_list_etag_matches_head(store: ObjectStore, bucket: str) -> None:
    store.put_bytes(bucket, "k", b"content")
    [listed] = store.list_objects(bucket)
    assert listed.etag == store.head(bucket, "k").etag
    assert listed.size == 7


def test_missing_keys_raise_no_such_key(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(NoSuchKey, match=r"missing\.txt"):
        store.head(bucket, "missing.txt")
    with pytest.raises(NoSuchKey):
        store.get_bytes(bucket, "missing.txt")
    with pytest.raises(NoSuchKey):
        store.get_file(bucket, "missing.txt", dest)
    assert not dest.exists()


def test_missing_buckets_raise_no_such_bucket(store: ObjectStore, tmp_path: Path) -> None:
    missing = unique_bucket()
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(NoSuchBucket, match=missing):
        store.list_objects(missing)  # raised by the call, before iterating
    with pytest.raises(NoSuchBucket):
        store.head(missing, "k")
    with pytest.raises(NoSuchBucket):
        store.get_bytes(missing, "k")
    with pytest.raises(NoSuchBucket):
        store.put_bytes(missing, "k", b"x")
    with pytest.raises(NoSuchBucket):
        store.put_file(missing, "k", source)
    with pytest.raises(NoSuchBucket):
        store.delete(missing, "k")
    assert not store.bucket_exists(missing)


def test_delete_is_idempotent(store: ObjectStore, bucket: str) -> None:
    store.delete(bucket, "never-existed")
    store.put_bytes(bucket, "dir/k", b"x")
    store.put_bytes(bucket, "dir/keep", b"y")
    store.delete(bucket, "dir/k")
    with pytest.raises(NoSuchKey):
        store.head(bucket, "dir/k")
    store.delete(bucket, "dir/k")
    assert [info.key for info in store.list_objects(bucket)] == ["dir/keep"]


@pytest.mark.parametrize(
    "key", ["", "/absolute", "a/../b", "..", "./a", "a/./b", "nul\0key", "k" * 1025]
)
def test_invalid_keys_are_rejected(
    store: ObjectStore, bucket: str, tmp_path: Path, key: str
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    calls: list[Callable[[], Any]] = [
        lambda: store.put_bytes(bucket, key, b"x"),
        lambda: store.put_file(bucket, key, source),
        lambda: store.get_bytes(bucket, key),
        lambda: store.get_file(bucket, key, tmp_path / "dest"),
        lambda: store.head(bucket, key),
        lambda: store.delete(bucket, key),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match="object key"):
            call()
    assert list(store.list_objects(bucket)) == []


def test_put_file_of_a_missing_file_says_so(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        store.put_file(bucket, "k", tmp_path / "nope")
    with pytest.raises(StorageError, match="folder"):
        store.put_file(bucket, "k", tmp_path)


def test_a_20_mib_object_round_trips_with_progress(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(20 * MIB + 123)  # several 8 MiB parts for S3, and a short last one
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    uploaded = ProgressTotal()
    store.put_file(bucket, "big/big.bin", source, progress=uploaded)
    assert uploaded.total == len(data)
    assert uploaded.calls > 1  # reported incrementally, not once at the end
    assert store.head(bucket, "big/big.bin").size == len(data)

    downloaded = ProgressTotal()
    dest = tmp_path / "back" / "big.bin"
    store.get_file(bucket, "big/big.bin", dest, progress=downloaded)
    assert downloaded.total == len(data)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


# -- the contract: get_prefix ----------------------------------------------------------------


@pytest.fixture
def layout(store: ObjectStore, bucket: str) -> str:
    for key in ["data/train/a.csv", "data/train/sub/b.csv", "data/train-01/a.csv", "other/c"]:
        store.put_bytes(bucket, key, key.encode())
    return bucket


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            "data/train",
            {
                "a.csv": "data/train/a.csv",
                "sub/b.csv": "data/train/sub/b.csv",
                "train-01/a.csv": "data/train-01/a.csv",
            },
        ),
        ("data/train/", {"a.csv": "data/train/a.csv", "sub/b.csv": "data/train/sub/b.csv"}),
        (
            "data/tr",
            {
                "train/a.csv": "data/train/a.csv",
                "train/sub/b.csv": "data/train/sub/b.csv",
                "train-01/a.csv": "data/train-01/a.csv",
            },
        ),
        ("data/train-01", {"a.csv": "data/train-01/a.csv"}),
        ("data/train/a.csv", {"a.csv": "data/train/a.csv"}),
        (
            "",
            {
                "data/train/a.csv": "data/train/a.csv",
                "data/train/sub/b.csv": "data/train/sub/b.csv",
                "data/train-01/a.csv": "data/train-01/a.csv",
                "other/c": "other/c",
            },
        ),
        ("nothing/", {}),
    ],
)
def test_get_prefix_keeps_paths_relative_to_the_prefix_folder(
    store: ObjectStore, layout: str, tmp_path: Path, prefix: str, expected: dict[str, str]
) -> None:
    dest = tmp_path / "channel"
    written = store.get_prefix(layout, prefix, dest)
    assert files_under(dest) == {rel: key.encode() for rel, key in expected.items()}
    assert written == [dest / rel for rel, key in sorted(expected.items(), key=lambda i: i[1])]


def test_get_prefix_concurrently_reports_all_bytes(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    expected = {f"part-{i:03d}.bin": os.urandom(1000 + i) for i in range(40)}
    for name, data in expected.items():
        store.put_bytes(bucket, f"shards/{name}", data)
    progress = ProgressTotal()
    written = store.get_prefix(bucket, "shards/", tmp_path / "d", progress=progress, max_workers=8)
    assert files_under(tmp_path / "d") == expected
    assert len(written) == 40
    assert progress.total == sum(len(data) for data in expected.values())


def test_get_prefix_skips_folder_markers(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    store.put_bytes(bucket, "d/", b"")
    store.put_bytes(bucket, "d/a.txt", b"a")
    assert store.get_prefix(bucket, "d/", tmp_path / "out") == [tmp_path / "out" / "a.txt"]
    assert files_under(tmp_path / "out") == {"a.txt": b"a"}


def test_get_prefix_of_a_missing_bucket(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NoSuchBucket):
        store.get_prefix(unique_bucket(), "", tmp_path / "out")


# -- pure helpers behind get_prefix ----------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "key", "relative"),
    [
        ("data/train", "data/train/a.csv", "a.csv"),
        ("data/tr", "data/train-01/a.csv", "train-01/a.csv"),
        ("data/train/", "data/train/x/a.csv", "x/a.csv"),
        ("data/train", "data/train-01/a.csv", "train-01/a.csv"),
        ("data/train", "data/train", "train"),
        ("", "a/b", "a/b"),
        ("a", "a/b", "b"),
        ("a", "ab/c", "ab/c"),
    ],
)
def test_key_relative_to_prefix(prefix: str, key: str, relative: str) -> None:
    assert key_relative_to_prefix(prefix, key) == relative


def _infos(*keys: str) -> list[ObjectInfo]:
    return [ObjectInfo(key, 1, datetime.now(UTC), '"e"') for key in keys]


def test_plan_refuses_two_objects_on_one_path(tmp_path: Path) -> None:
    # "d/train" names the folder for the first key and the parent folder for the second.
    with pytest.raises(StorageError, match="'d/train/train-01/a' and 'd/train-01/a'"):
        plan_prefix_download("d/train", _infos("d/train/train-01/a", "d/train-01/a"), tmp_path)


def test_plan_refuses_a_key_that_is_also_a_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="as a file or a folder"):
        plan_prefix_download("", _infos("a", "a/b"), tmp_path)
    with pytest.raises(StorageError, match="as a file or a folder"):
        plan_prefix_download("", _infos("a/b", "a"), tmp_path)


def test_plan_maps_keys_below_the_destination(tmp_path: Path) -> None:
    plan = plan_prefix_download("p/", _infos("p/", "p/a", "p/b/c"), tmp_path)
    assert [(info.key, dest) for info, dest in plan] == [
        ("p/a", tmp_path / "a"),
        ("p/b/c", tmp_path / "b" / "c"),
    ]


# -- the factory -----------------------------------------------------------------------------


def test_unknown_store_kind_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="known kinds: local, s3"):
        open_object_store("ftp", root=tmp_path)


def test_boto3_loads_only_when_an_s3_store_is_opened(tmp_path: Path) -> None:
    program = (
        "import sys, pathlib\n"
        "from dockyard.storage.stores import open_object_store\n"
        f"store = open_object_store('local', root=pathlib.Path({str(tmp_path)!r}))\n"
        "store.list_buckets()\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


# -- the local store -------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects")
    store.create_bucket("data")
    return store


def test_local_store_touches_no_disk_until_written(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    assert store.list_buckets() == []
    assert not store.bucket_exists("data")
    assert not root.exists()
    store.create_bucket("data")
    store.put_bytes("data", "k", b"x")
    assert (root / "data" / "k").read_bytes() == b"x"


def test_local_objects_are_plain_files_readable_by_others(local: LocalObjectStore) -> None:
    local.put_bytes("data", "a/b.csv", b"1,2")
    path = local.root / "data" / "a" / "b.csv"
    assert path.read_bytes() == b"1,2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # sandboxes may run as another user
    assert local.list_buckets() == ["data"]  # the .tmp folder is not a bucket
    assert (local.root / ".tmp").is_dir()
    assert list((local.root / ".tmp").iterdir()) == []  # and nothing is left in it


def test_local_write_is_invisible_until_complete(local: LocalObjectStore, tmp_path: Path) -> None:
    local.put_bytes("data", "big.bin", b"old")
    source = tmp_path / "slow-source"
    os.mkfifo(source)  # a source we feed chunk by chunk, so the write is caught halfway
    received = 0
    arrived = threading.Condition()

    def progress(count: int) -> None:
        nonlocal received
        with arrived:
            received += count
            arrived.notify_all()

    failures: list[BaseException] = []

    def write() -> None:
        try:
            local.put_file("data", "big.bin", source, progress=progress)
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    chunk = b"n" * MIB
    with source.open("wb") as pipe:
        for sent in range(1, 4):
            pipe.write(chunk)
            pipe.flush()
            with arrived:
                assert arrived.wait_for(lambda n=sent: received >= n * MIB, timeout=30)
            # Halfway through: readers still see the old object, whole.
            assert local.get_bytes("data", "big.bin") == b"old"
            assert [(i.key, i.size) for i in local.list_objects("data")] == [("big.bin", 3)]
            [partial] = (local.root / ".tmp").iterdir()
            assert partial.stat().st_size > (sent - 1) * MIB
    writer.join(timeout=30)
    assert not writer.is_alive() and failures == []
    assert local.get_bytes("data", "big.bin") == chunk * 3
    assert list((local.root / ".tmp").iterdir()) == []


def test_local_failed_write_leaves_nothing(local: LocalObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"z" * (20 * MIB))

    def progress(count: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        local.put_file("data", "big", source, progress=progress)
    with pytest.raises(NoSuchKey):
        local.head("data", "big")
    assert list((local.root / ".tmp").iterdir()) == []


def test_local_reader_keeps_the_version_it_opened(local: LocalObjectStore, tmp_path: Path) -> None:
    local.put_bytes("data", "k", b"first")
    linked = tmp_path / "staged"
    path = local.local_path("data", "k")
    assert path is not None
    os.link(path, linked)  # how staging uses local_path
    local.put_bytes("data", "k", b"second")
    assert linked.read_bytes() == b"first"  # a rename never rewrites a staged file
    assert local.get_bytes("data", "k") == b"second"


def test_local_move_renames_the_file_in(local: LocalObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"m" * 1000)
    inode = source.stat().st_ino
    local.put_file("data", "out/model.tar.gz", source, move=True)
    path = local.local_path("data", "out/model.tar.gz")
    assert path is not None and path.stat().st_ino == inode  # renamed, not copied


def test_local_etag_is_quoted_hex_and_changes_with_every_write(local: LocalObjectStore) -> None:
    local.put_bytes("data", "k", b"same")
    first = local.head("data", "k").etag
    assert first == local.head("data", "k").etag  # stable while unchanged
    assert len(first) == 34 and first[0] == first[-1] == '"'
    int(first[1:-1], 16)
    local.put_bytes("data", "k", b"same")  # same bytes, new file
    assert local.head("data", "k").etag != first


def test_local_key_and_folder_conflicts(local: LocalObjectStore) -> None:
    local.put_bytes("data", "a", b"file")
    with pytest.raises(StorageError, match="object 'a' exists") as caught:
        local.put_bytes("data", "a/b", b"x")
    assert not isinstance(caught.value, ValidationError)
    local.put_bytes("data", "x/y", b"file")
    with pytest.raises(StorageError, match="objects under 'x/' exist"):
        local.put_bytes("data", "x", b"x")
    assert local.get_bytes("data", "a") == b"file"
    assert [i.key for i in local.list_objects("data")] == ["a", "x/y"]
    assert list((local.root / ".tmp").iterdir()) == []


def test_local_folder_markers_are_stored_as_nothing(local: LocalObjectStore) -> None:
    local.put_bytes("data", "folder/", b"")
    assert list(local.list_objects("data")) == []
    assert not (local.root / "data" / "folder").exists()
    local.delete("data", "folder/")


def test_local_rejects_empty_path_segments(local: LocalObjectStore) -> None:
    with pytest.raises(ValidationError, match="empty path segment"):
        local.put_bytes("data", "a//b", b"x")


def test_local_delete_prunes_empty_folders(local: LocalObjectStore) -> None:
    local.put_bytes("data", "a/b/c/one", b"1")
    local.put_bytes("data", "a/two", b"2")
    local.delete("data", "a/b/c/one")
    assert not (local.root / "data" / "a" / "b").exists()
    assert (local.root / "data" / "a" / "two").exists()
    local.delete("data", "a/two")
    assert list((local.root / "data").iterdir()) == []
    assert local.bucket_exists("data")
    local.delete("data", "a")  # neither an object nor a folder now: fine


def test_local_path_is_the_object_file(local: LocalObjectStore) -> None:
    local.put_bytes("data", "train/a.csv", b"abc")
    path = local.local_path("data", "train/a.csv")
    assert path == local.root / "data" / "train" / "a.csv"
    assert path.read_bytes() == b"abc"
    with pytest.raises(NoSuchKey):
        local.local_path("data", "train/missing.csv")
    with pytest.raises(NoSuchKey):
        local.local_path("data", "train")  # a folder is not an object


def test_local_prefix_dir_only_on_folder_boundaries(local: LocalObjectStore) -> None:
    for key in ["train/a.csv", "train/sub/b.csv", "test/c.csv", "test-01/d.csv"]:
        local.put_bytes("data", key, key.encode())
    bucket_dir = local.root / "data"
    assert local.local_prefix_dir("data", "") == bucket_dir
    assert local.local_prefix_dir("data", "train/") == bucket_dir / "train"
    assert local.local_prefix_dir("data", "train") == bucket_dir / "train"
    assert local.local_prefix_dir("data", "train/sub") == bucket_dir / "train" / "sub"
    assert local.local_prefix_dir("data", "test/") == bucket_dir / "test"
    assert local.local_prefix_dir("data", "test") is None  # also covers test-01/
    assert local.local_prefix_dir("data", "tr") is None  # ends inside a name
    assert local.local_prefix_dir("data", "train/a.csv") is None  # an object, not a folder
    assert local.local_prefix_dir("data", "nothing/") is None
    with pytest.raises(NoSuchBucket):
        local.local_prefix_dir("missing", "")


@pytest.mark.parametrize("prefix", ["", "train", "train/", "train/sub"])
def test_local_prefix_dir_matches_get_prefix_layout(
    local: LocalObjectStore, tmp_path: Path, prefix: str
) -> None:
    for key in ["train/a.csv", "train/sub/b.csv", "z.txt"]:
        local.put_bytes("data", key, key.encode())
    folder = local.local_prefix_dir("data", prefix)
    assert folder is not None
    local.get_prefix("data", prefix, tmp_path / "copy")
    assert files_under(folder) == files_under(tmp_path / "copy")


def test_local_list_does_not_see_temp_files_or_links(local: LocalObjectStore) -> None:
    local.put_bytes("data", "real", b"x")
    (local.root / ".tmp" / "put-stray").write_bytes(b"half")
    (local.root / "data" / "link").symlink_to(local.root / "data" / "real")
    assert [i.key for i in local.list_objects("data")] == ["real"]


# -- the S3 store ----------------------------------------------------------------------------


@pytest.fixture
def s3(moto_endpoint: str, moto_credentials: None, tmp_path: Path) -> S3ObjectStore:
    return S3ObjectStore(endpoint_url=moto_endpoint, cache_dir=tmp_path / "cache")


@pytest.fixture
def s3_bucket(s3: S3ObjectStore) -> str:
    name = unique_bucket()
    s3.create_bucket(name)
    return name


@pytest.fixture
def requests_made(s3: S3ObjectStore) -> Iterator[dict[str, int]]:
    """How many requests of each operation the store sends."""
    counts: dict[str, int] = {}

    def count(model: Any, **kwargs: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    s3.client.meta.events.register("before-call.s3", count)
    yield counts
    s3.client.meta.events.unregister("before-call.s3", count)


def test_s3_has_no_local_paths(s3: S3ObjectStore, s3_bucket: str) -> None:
    s3.put_bytes(s3_bucket, "train/a.csv", b"x")
    assert s3.local_path(s3_bucket, "train/a.csv") is None
    assert s3.local_prefix_dir(s3_bucket, "train/") is None


def test_s3_big_uploads_are_multipart(s3: S3ObjectStore, s3_bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"\1" * (20 * MIB))
    s3.put_file(s3_bucket, "big", source)
    assert s3.head(s3_bucket, "big").etag.endswith('-3"')  # three 8 MiB parts


def test_s3_second_get_comes_from_the_cache(
    s3: S3ObjectStore, s3_bucket: str, tmp_path: Path, requests_made: dict[str, int]
) -> None:
    s3.put_bytes(s3_bucket, "data/a.bin", b"version one")
    first = ProgressTotal()
    s3.get_file(s3_bucket, "data/a.bin", tmp_path / "one", progress=first)
    assert first.total == len(b"version one")
    assert requests_made["GetObject"] == 1

    again = ProgressTotal()
    s3.get_file(s3_bucket, "data/a.bin", tmp_path / "two", progress=again)
    assert (tmp_path / "two").read_bytes() == b"version one"
    assert again.calls == 0  # no bytes moved
    assert requests_made["GetObject"] == 1
    assert (tmp_path / "two").stat().st_ino == (tmp_path / "one").stat().st_ino  # hard links
    [cached] = (tmp_path / "cache").iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444

    s3.put_bytes(s3_bucket, "data/a.bin", b"version two!")
    changed = ProgressTotal()
    s3.get_file(s3_bucket, "data/a.bin", tmp_path / "two", progress=changed)
    assert (tmp_path / "two").read_bytes() == b"version two!"
    assert (tmp_path / "one").read_bytes() == b"version one"  # earlier copies are untouched
    assert changed.total == len(b"version two!")
    assert requests_made["GetObject"] == 2
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_s3_get_into_the_same_dest_twice(s3: S3ObjectStore, s3_bucket: str, tmp_path: Path) -> None:
    s3.put_bytes(s3_bucket, "k", b"x")
    dest = tmp_path / "out" / "k"
    s3.get_file(s3_bucket, "k", dest)
    s3.get_file(s3_bucket, "k", dest)  # dest is already a link to the cached file
    assert sorted(p.name for p in dest.parent.iterdir()) == ["k"]
    assert dest.read_bytes() == b"x"


def test_s3_cached_multipart_object(
    s3: S3ObjectStore, s3_bucket: str, tmp_path: Path, requests_made: dict[str, int]
) -> None:
    data = os.urandom(20 * MIB)
    (tmp_path / "big").write_bytes(data)
    s3.put_file(s3_bucket, "big", tmp_path / "big")
    s3.get_file(s3_bucket, "big", tmp_path / "one")
    ranged_gets = requests_made["GetObject"]
    assert ranged_gets == 3  # concurrent 8 MiB ranges
    s3.get_file(s3_bucket, "big", tmp_path / "two")
    assert requests_made["GetObject"] == ranged_gets
    assert (tmp_path / "two").read_bytes() == data


def test_s3_get_prefix_uses_the_listing_and_the_cache(
    s3: S3ObjectStore, s3_bucket: str, tmp_path: Path, requests_made: dict[str, int]
) -> None:
    for i in range(5):
        s3.put_bytes(s3_bucket, f"train/{i}.csv", f"{i}\n".encode())
    s3.get_prefix(s3_bucket, "train/", tmp_path / "job-1")
    assert requests_made.get("HeadObject", 0) == 0  # sizes and etags came from the listing
    assert requests_made["GetObject"] == 5
    s3.get_prefix(s3_bucket, "train/", tmp_path / "job-2")
    assert requests_made["GetObject"] == 5  # the second job starts at once
    assert files_under(tmp_path / "job-2") == {f"{i}.csv": f"{i}\n".encode() for i in range(5)}


def test_s3_object_changed_after_listing_is_fetched_fresh(
    s3: S3ObjectStore, s3_bucket: str, tmp_path: Path
) -> None:
    s3.put_bytes(s3_bucket, "k", b"old")
    [stale] = s3.list_objects(s3_bucket)
    s3.put_bytes(s3_bucket, "k", b"newer")
    # What get_prefix does with each listed object; the download is pinned to the listed ETag.
    s3._get_listed(s3_bucket, stale, tmp_path / "k", None)
    assert (tmp_path / "k").read_bytes() == b"newer"
    # The new bytes were never filed under the old ETag.
    assert not s3._cache_path(s3_bucket, stale).exists()


def test_s3_without_cache_downloads_every_time(
    moto_endpoint: str, moto_credentials: None, tmp_path: Path
) -> None:
    store = S3ObjectStore(endpoint_url=moto_endpoint)
    bucket = unique_bucket()
    store.create_bucket(bucket)
    store.put_bytes(bucket, "k", b"abc")
    for name in ("one", "two"):
        progress = ProgressTotal()
        store.get_file(bucket, "k", tmp_path / name, progress=progress)
        assert progress.total == 3
    assert (tmp_path / "one").stat().st_ino != (tmp_path / "two").stat().st_ino


def test_s3_unreachable_endpoint_is_a_storage_error(moto_credentials: None) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = unused.getsockname()[1]
        store = S3ObjectStore(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
        with pytest.raises(StorageError, match="cannot reach the S3 endpoint") as caught:
            store.list_buckets()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_s3_other_client_errors_carry_code_and_message(s3: S3ObjectStore, s3_bucket: str) -> None:
    s3.put_bytes(s3_bucket, "k", b"x")
    # A bucket that still holds objects cannot be deleted; nothing in the interface maps it.
    with pytest.raises(StorageError, match="BucketNotEmpty"), s3._translated(s3_bucket):
        s3.client.delete_bucket(Bucket=s3_bucket)
