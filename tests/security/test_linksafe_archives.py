"""Issue 8, part 5: archives dockyard unpacks (sourcedir.tar.gz, model.tar.gz) are bounded in
what they expand to, how many members they hold and how much they grow; the defaults refuse a
4.6 MB archive that expands to 1 GB and let a real 10 GB model through."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.engine.archives import ArchiveLimits, safe_extract
from dockyard.settings import Settings
from tests.api.test_endpoints_api import make_echo_image, wait_for_endpoint
from tests.conftest import RunningServer, make_image, training_request, wait_for_job

MIB = 1024 * 1024
GIB = 1024 * MIB


class _Generated(io.RawIOBase):
    """`size` bytes made of one MiB block repeated: `noise` random bytes, then zeros. Read in
    chunks, so a 1 GiB member is written into the archive without holding it in memory."""

    def __init__(self, size: int, noise: int) -> None:
        self._left = size
        self._block = random.Random(8).randbytes(noise) + bytes(MIB - noise)
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left)
        done = 0
        while done < count:
            offset = self._at % MIB
            step = min(count - done, MIB - offset)
            buffer[done : done + step] = self._block[offset : offset + step]
            done += step
            self._at += step
        self._left -= count
        return count


def _archive(path: Path, members: dict[str, tuple[int, int]]) -> Path:
    """A tar.gz of members name → (size, random bytes per MiB)."""
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for name, (size, noise) in members.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BufferedReader(_Generated(size, noise), MIB))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The review's archive: about 4.6 MB that expands to 1 GiB (a ratio of about 220)."""
    path = tmp_path_factory.mktemp("bomb") / "sourcedir.tar.gz"
    return _archive(path, {"train.py": (20, 20), "weights.bin": (GIB, 3150)})


def test_the_reviews_archive_is_refused_under_the_defaults(bomb: Path, tmp_path: Path) -> None:
    assert 4_000_000 < bomb.stat().st_size < 5_500_000
    dest = tmp_path / "code"
    with pytest.raises(ValidationError) as refused:
        safe_extract(bomb, dest, "sagemaker_submit_directory s3://b/sourcedir.tar.gz")
    message = str(refused.value)
    assert "sagemaker_submit_directory s3://b/sourcedir.tar.gz was refused" in message
    assert "DOCKYARD_ARCHIVE_MAX_RATIO" in message and "decompression bomb" in message
    # Refused from the member's header, before a byte of it was written.
    assert not (dest / "weights.bin").exists()


def test_the_defaults_let_a_real_10_gb_model_through() -> None:
    # Model weights barely compress: a 10 GB model is a 9 GB or larger archive.
    allowed, _ = ArchiveLimits().allowed_bytes(9 * 1024**3)
    assert allowed >= 10 * 1024**3
    # And the settings' defaults are these limits.
    settings = Settings()
    assert (
        ArchiveLimits(
            settings.archive_max_bytes, settings.archive_max_members, settings.archive_max_ratio
        )
        == ArchiveLimits()
    )


def test_the_ratio_setting_decides(tmp_path: Path) -> None:
    zeros = _archive(tmp_path / "zeros.tar.gz", {"zeros.bin": (100 * MIB, 0)})
    with pytest.raises(ValidationError, match="DOCKYARD_ARCHIVE_MAX_RATIO"):
        safe_extract(zeros, tmp_path / "a", "ModelDataUrl file:///zeros.tar.gz", ArchiveLimits())
    safe_extract(zeros, tmp_path / "b", "x", ArchiveLimits(max_ratio=5000))
    assert (tmp_path / "b" / "zeros.bin").stat().st_size == 100 * MIB


def test_small_archives_are_never_refused_for_their_ratio(tmp_path: Path) -> None:
    text = _archive(tmp_path / "text.tar.gz", {"rows.csv": (10 * MIB, 0)})
    safe_extract(text, tmp_path / "out", "x")
    assert (tmp_path / "out" / "rows.csv").stat().st_size == 10 * MIB


def test_the_member_count_is_bounded(tmp_path: Path) -> None:
    many = _archive(tmp_path / "many.tar.gz", {f"f{i:03}": (1, 1) for i in range(50)})
    dest = tmp_path / "out"
    with pytest.raises(
        ValidationError, match=r"more than 10 members \(DOCKYARD_ARCHIVE_MAX_MEMBERS"
    ):
        safe_extract(many, dest, "x", ArchiveLimits(max_members=10))
    assert len(list(dest.iterdir())) == 10


def test_the_expanded_size_is_bounded_and_hard_links_count(tmp_path: Path) -> None:
    # Incompressible, so the ratio allows them: the absolute bound is what refuses.
    three = _archive(tmp_path / "three.tar.gz", {f"part-{i}": (MIB, MIB) for i in range(3)})
    dest = tmp_path / "out"
    with pytest.raises(ValidationError, match=r"more than 2\.5 MiB \(DOCKYARD_ARCHIVE_MAX_BYTES"):
        safe_extract(three, dest, "x", ArchiveLimits(max_bytes=MIB * 5 // 2))
    assert sorted(p.name for p in dest.iterdir()) == ["part-0", "part-1"]

    linked = tmp_path / "linked.tar.gz"
    with tarfile.open(linked, "w:gz") as tar:
        info = tarfile.TarInfo("data")
        info.size = MIB
        tar.addfile(info, io.BytesIO(random.Random(1).randbytes(MIB)))
        for i in range(3):
            link = tarfile.TarInfo(f"link-{i}")
            link.type, link.linkname = tarfile.LNKTYPE, "data"
            tar.addfile(link)
    with pytest.raises(ValidationError, match="DOCKYARD_ARCHIVE_MAX_BYTES"):
        safe_extract(linked, tmp_path / "links", "x", ArchiveLimits(max_bytes=3 * MIB))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_ARCHIVE_MAX_BYTES", str(GIB))
    monkeypatch.setenv("DOCKYARD_ARCHIVE_MAX_MEMBERS", "5000")
    monkeypatch.setenv("DOCKYARD_ARCHIVE_MAX_RATIO", "500")
    settings = Settings()
    assert (settings.archive_max_bytes, settings.archive_max_members) == (GIB, 5000)
    assert settings.archive_max_ratio == 500


LIST_CODE = "import os\nprint(sorted(os.listdir('/opt/ml/code')))\n"


def test_a_training_job_with_the_bomb_as_code_fails_saying_which_setting(
    server: RunningServer, tmp_path: Path, bomb: Path
) -> None:
    store = server.engine.store
    store.create_bucket("code")
    store.put_file("code", "job/sourcedir.tar.gz", bomb)
    sagemaker = server.client("sagemaker")
    hps = {"sagemaker_submit_directory": json.dumps("s3://code/job/sourcedir.tar.gz")}
    image = make_image(tmp_path / "img", LIST_CODE)
    sagemaker.create_training_job(**training_request("bomb-code", image, HyperParameters=hps))
    described = wait_for_job(sagemaker, "bomb-code")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: sagemaker_submit_directory")
    assert "DOCKYARD_ARCHIVE_MAX_RATIO" in described["FailureReason"]
    code = server.settings.jobs_dir / "bomb-code" / "hosts" / "algo-1" / "code"
    assert not (code / "weights.bin").exists()


def test_an_endpoint_with_the_bomb_as_model_fails_saying_which_setting(
    server: RunningServer, tmp_path: Path, bomb: Path
) -> None:
    store = server.engine.store
    store.create_bucket("models")
    store.put_file("models", "bomb/model.tar.gz", bomb)
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="bomb",
        PrimaryContainer={
            "Image": str(make_echo_image(tmp_path)),
            "ModelDataUrl": "s3://models/bomb/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="bomb-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "bomb",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="bomb", EndpointConfigName="bomb-config")
    described = wait_for_endpoint(sagemaker, "bomb")
    assert described["EndpointStatus"] == "Failed"
    assert "DOCKYARD_ARCHIVE_MAX_RATIO" in described["FailureReason"]
    sagemaker.delete_endpoint(EndpointName="bomb")
