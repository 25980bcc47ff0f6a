"""Script mode: the code `sagemaker_submit_directory` names. A server on this machine reads the
source folder in place (an absolute file:// URI; the engine copies it into /opt/ml/code); a server
elsewhere, or code with `dependencies`, gets a sourcedir.tar.gz in the object store, as the SDK
uploads one to S3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.client.local_data import SOURCE_ARCHIVE, upload_code
from dockyard.storage.objects import S3Uri

if TYPE_CHECKING:
    from dockyard.sdk.session import Session


@dataclass(frozen=True)
class StagedCode:
    submit_directory: str  # file://<folder> or s3://.../sourcedir.tar.gz
    program: str  # the entry point, relative to the submit directory


def source_folder(entry_point: str, source_dir: str | None) -> tuple[Path, str]:
    """The folder holding the code and the entry point relative to it; without a source_dir,
    the entry point's own folder (as the SDK's local mode does). ValueError when missing."""
    if source_dir is None:
        script = Path(entry_point).expanduser()
        if not script.is_file():
            raise ValueError(
                f'entry_point "{entry_point}" is not a file; give its path (relative to the '
                "working folder), or a source_dir that holds it"
            )
        return script.absolute().parent, script.name
    folder = Path(source_dir).expanduser().absolute()
    if not folder.is_dir():
        raise ValueError(f'source_dir "{source_dir}" is not a folder')
    if not (folder / entry_point).is_file():
        raise ValueError(f'No file named "{entry_point}" was found in directory "{source_dir}".')
    return folder, Path(entry_point).as_posix()


def stage_code(
    session: Session,
    *,
    entry_point: str,
    source_dir: str | None,
    dependencies: list[str],
    job_name: str,
    code_location: str | None,
    output_path: str,
) -> StagedCode:
    if source_dir is not None and source_dir.startswith("s3://"):
        if dependencies:
            raise ValueError(
                "dependencies cannot be added to a source_dir in S3; put them into its "
                "sourcedir.tar.gz, or use a local source_dir"
            )
        return StagedCode(source_dir, entry_point)
    folder, program = source_folder(entry_point, source_dir)
    extra = [Path(dependency).expanduser().absolute() for dependency in dependencies]
    for dependency, path in zip(dependencies, extra, strict=True):
        if not path.exists():
            raise ValueError(f'dependency "{dependency}" does not exist')
    if not extra and session.server_reads_local_files:
        return StagedCode("file://" + str(folder), program)
    # The engine never reads code inside DOCKYARD_HOME, so an assembled folder could not live
    # there: source folder and dependencies travel as one archive through the object store.
    base = S3Uri.parse(code_location or output_path)
    prefix = base.key if code_location else ""
    target = S3Uri(base.bucket).join(prefix, job_name, "source", SOURCE_ARCHIVE)
    return StagedCode(upload_code(session.store, folder, extra, target), program)
