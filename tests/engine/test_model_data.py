"""A model's ModelDataUrl unpacked into an instance's model folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.engine.local_paths import LocalPaths
from dockyard.engine.model_data import stage_model_data
from dockyard.storage.stores import open_object_store


def _model_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_from_the_store_and_from_a_local_file(tmp_path: Path) -> None:
    store = open_object_store("local", root=tmp_path / "s3")
    store.create_bucket("models")
    payload = _model_tar({"model.rds": b"forest", "code/inference.py": b"def model_fn(d): ...\n"})
    store.put_bytes("models", "iris/model.tar.gz", payload)
    stage_model_data(
        "s3://models/iris/model.tar.gz",
        store,
        tmp_path / "a",
        tmp_path / "scratch-a",
        LocalPaths.of([tmp_path], []),
    )
    assert (tmp_path / "a" / "model.rds").read_bytes() == b"forest"
    assert (tmp_path / "a" / "code" / "inference.py").is_file()

    local = tmp_path / "model.tar.gz"
    local.write_bytes(payload)
    stage_model_data(
        f"file://{local}",
        store,
        tmp_path / "b",
        tmp_path / "scratch-b",
        LocalPaths.of([tmp_path], []),
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["code", "model.rds"]


def test_no_url_gives_an_empty_folder_and_a_hostile_archive_is_refused(tmp_path: Path) -> None:
    store = open_object_store("local", root=tmp_path / "s3")
    stage_model_data(
        None, store, tmp_path / "empty", tmp_path / "scratch", LocalPaths.of([tmp_path], [])
    )
    assert list((tmp_path / "empty").iterdir()) == []
    hostile = tmp_path / "hostile.tar.gz"
    hostile.write_bytes(_model_tar({"../../etc/cron.d/owned": b"* * * * * root id"}))
    with pytest.raises(ValidationError, match="was refused"):
        stage_model_data(
            str(hostile), store, tmp_path / "c", tmp_path / "scratch", LocalPaths.of([tmp_path], [])
        )
    assert not (tmp_path / "etc").exists()
