"""Framework images: SageMaker framework image URIs and `dockyard/<framework>:<version>` names.

A framework image is not a folder with a Dockerfile but a pinned requirement set, which
`runtimes.environments` builds into a host virtual environment holding the framework and the real
`sagemaker-training` toolkit (plus the legacy `sagemaker-containers`).

Names understood:

- `dockyard/<framework>[:<version>]`, e.g. `dockyard/python:3.11`, `dockyard/sklearn:1.2-1`,
  `dockyard/pytorch:2.13` (PyTorch is always the CPU build here).
- SageMaker's ECR URIs `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` with the
  repositories `pytorch-training`, `sagemaker-scikit-learn` (and `sklearn-*`), `sagemaker-xgboost`
  or `xgboost`, `tensorflow-training`, `huggingface-*`. The version comes from the tag:
  `2.1.0-cpu-py310` → 2.1.0, `1.2-1-cpu-py3` → 1.2-1, `1.7-1` → 1.7-1; for Hugging Face images the
  `transformers4.36.0` part of the tag names the version.

Version policy:

- A version dockyard knows gets that set (`2.13.0` matches `2.13`, `1.2` matches `1.2-1`).
- A known framework at an unknown version gets the nearest known version of that framework (closest
  major, then minor, ...; a tie goes to the newer one), and `Framework.note` says what was asked
  and what is given. Only one CPU build of PyTorch can be had on this machine (2.13.0), so every
  PyTorch version maps to it; GPU tags get CPU builds.
- An unknown framework (`mxnet-training`, `dockyard/julia:1`) is an ImageError that lists the known
  frameworks and says how to add one: a JSON file named by DOCKYARD_FRAMEWORKS_FILE that maps
  `"name:version"` to `{"requirements": [...], "training_module": "module:function"}` (read with
  `load_frameworks_file`; its entries win over the built-in ones).

A requirement line ending in ` --no-deps` is installed after the others, without its
dependencies: the SageMaker framework toolkits pin old `sagemaker-training` versions that the
current toolkit satisfies in practice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import ImageError


@dataclass(frozen=True)
class Framework:
    """One pinned framework environment: what to install, and what the toolkit runs."""

    name: str  # "python", "sklearn", "pytorch", "xgboost", "tensorflow", "huggingface", ...
    version: str  # dockyard's version key: "3.11", "1.2-1", "2.13", ...
    requirements: tuple[str, ...]  # pinned pip lines, the toolkit(s) included
    training_module: str | None = None  # SAGEMAKER_TRAINING_MODULE in the environment's image
    requested: str = ""  # the image text as the user gave it
    note: str | None = None  # what was asked and what is given, when they differ

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


# The toolkits every environment holds: `train` runs sagemaker-training's trainer, and
# `sagemaker_containers.training_env()` keeps working for older scripts.
TOOLKIT = ("sagemaker-training==5.1.4", "sagemaker-containers==2.8.6.post2")
PYTORCH_TOOLKIT = "sagemaker-pytorch-training==3.0.0 --no-deps"
# The PyTorch toolkit's main, except that SMDataParallel (GPU-only) runs with torchrun instead.
PYTORCH_MAIN = "dockyard_shim:pytorch_main"


def _framework(
    name: str, version: str, *lines: str, training_module: str | None = None
) -> Framework:
    return Framework(name, version, (*TOOLKIT, *lines), training_module)


BUILT_IN: tuple[Framework, ...] = (
    _framework("python", "3.11"),
    _framework(
        "sklearn",
        "1.2-1",
        "scikit-learn==1.2.2",
        "numpy==1.24.4",
        "scipy==1.10.1",
        "pandas==1.5.3",
        "joblib==1.2.0",
    ),
    _framework(
        "sklearn",
        "1.4-2",
        "scikit-learn==1.4.2",
        "numpy==1.26.4",
        "scipy==1.12.0",
        "pandas==2.2.2",
        "joblib==1.4.2",
    ),
    _framework(
        "pytorch",
        "2.13",
        "torch==2.13.0",
        "numpy==2.4.6",
        PYTORCH_TOOLKIT,
        training_module=PYTORCH_MAIN,
    ),
    _framework(
        "xgboost",
        "1.7-1",
        "xgboost==1.7.6",
        "numpy==1.26.4",
        "scipy==1.11.4",
        "pandas==2.1.4",
        "scikit-learn==1.3.2",
    ),
    _framework(
        "xgboost",
        "3.0-5",
        "xgboost-cpu==3.0.5",
        "numpy==2.2.6",
        "scipy==1.15.3",
        "pandas==2.3.3",
        "scikit-learn==1.7.2",
    ),
    _framework(
        "tensorflow",
        "2.19",
        "tensorflow-cpu==2.19.1",
        "numpy==2.1.3",
        "sagemaker-tensorflow-training==20.5.0 --no-deps",
        training_module="sagemaker_tensorflow_container.training:main",
    ),
    _framework(
        "huggingface",
        "4.57",
        "torch==2.13.0",
        "transformers==4.57.6",
        "datasets==3.6.0",
        "accelerate==1.10.1",
        "numpy==2.4.6",
        PYTORCH_TOOLKIT,
        training_module=PYTORCH_MAIN,
    ),
    _framework(
        "huggingface",
        "5.17",
        "torch==2.13.0",
        "transformers==5.17.0",
        "datasets==4.8.5",
        "accelerate==1.13.0",
        "numpy==2.4.6",
        PYTORCH_TOOLKIT,
        training_module=PYTORCH_MAIN,
    ),
)

# What the framework's version means, for notes: "PyTorch 2.1".
_DISPLAY = {
    "python": "Python",
    "sklearn": "scikit-learn",
    "pytorch": "PyTorch",
    "xgboost": "XGBoost",
    "tensorflow": "TensorFlow",
    "huggingface": "Transformers",
}
# Only CPU builds of these are installed here, whatever the image tag asks for.
_CPU_ONLY = frozenset({"pytorch", "tensorflow", "huggingface"})

_DOCKYARD_NAME = re.compile(r"^dockyard/(?P<name>[a-z0-9][a-z0-9._-]*)(?::(?P<tag>[^/:@\s]+))?$")
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*))?(?:@sha256:[0-9a-f]{64})?$"
)
_TAG_VERSION = re.compile(r"^(\d+(?:\.\d+)*(?:-\d+)?)(?=$|-)")
_TRANSFORMERS = re.compile(r"transformers(\d+(?:\.\d+)*)")
_KEY = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*):(?P<version>[A-Za-z0-9][A-Za-z0-9._-]*)$")
_MODULE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class _Request:
    """What an image name asks for, before it is matched against the known frameworks."""

    name: str
    version: str | None  # None: no version in the name
    gpu: bool = False
    display: str = ""  # the short form for notes: "pytorch-training:2.1.0-cpu-py310"


def resolve_framework(image: str, extra: Mapping[str, Framework] | None = None) -> Framework | None:
    """The framework environment `image` names, or None when it names no framework (a folder).

    `extra` (from `load_frameworks_file`) adds frameworks or replaces built-in ones by key."""
    request = _parse(image.strip())
    if request is None:
        return None
    known = known_frameworks(extra)
    candidates = [f for f in known.values() if f.name == request.name]
    if not candidates:
        raise ImageError(_unknown_message(image, request.name, known))
    chosen, exact = _nearest(candidates, request.version)
    note = None
    cpu = " (CPU)" if request.name in _CPU_ONLY else ""
    if not exact:
        asked = f"asked for {_display(request.name)} {request.version}"
        if request.version is None:
            asked = f"names no {_display(request.name)} version"
        note = f"{request.display} {asked}; dockyard provides {chosen.version}{cpu}"
    elif request.gpu and cpu:
        note = f"{request.display} asked for a GPU build; dockyard provides the CPU build"
    return Framework(
        name=chosen.name,
        version=chosen.version,
        requirements=chosen.requirements,
        training_module=chosen.training_module,
        requested=image,
        note=note,
    )


def known_frameworks(extra: Mapping[str, Framework] | None = None) -> dict[str, Framework]:
    """Every framework by its `name:version` key: the built-in ones, then `extra` over them."""
    known = {f"{f.name}:{f.version}": f for f in BUILT_IN}
    known.update(extra or {})
    return known


def load_frameworks_file(path: Path) -> dict[str, Framework]:
    """Read a DOCKYARD_FRAMEWORKS_FILE: `{"name:version": {"requirements": [...],
    "training_module": "module:function"}}`. The toolkit lines are not added: list them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageError(
            f"frameworks file {path} (DOCKYARD_FRAMEWORKS_FILE) does not exist"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"cannot read frameworks file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ImageError(f"frameworks file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ImageError(
            f"frameworks file {path} must hold a JSON object mapping "
            '"name:version" to {"requirements": [...], "training_module": "module:function"}'
        )
    frameworks: dict[str, Framework] = {}
    for key, entry in data.items():
        frameworks[key] = _file_entry(path, key, entry)
    return frameworks


def _file_entry(path: Path, key: str, entry: object) -> Framework:
    where = f"frameworks file {path}, entry {key!r}"
    match = _KEY.match(key)
    if not match:
        raise ImageError(f"{where}: the key must be name:version in lower case, like 'mxnet:1.9'")
    if not isinstance(entry, dict):
        raise ImageError(f'{where}: the value must be an object with "requirements"')
    unknown = sorted(set(entry) - {"requirements", "training_module"})
    if unknown:
        raise ImageError(
            f'{where}: unknown field {unknown[0]!r} (allowed: "requirements", "training_module")'
        )
    requirements = entry.get("requirements")
    if (
        not isinstance(requirements, list)
        or not requirements
        or not all(isinstance(line, str) and line.strip() for line in requirements)
    ):
        raise ImageError(
            f'{where}: "requirements" must be a list of pip requirement lines, '
            'e.g. ["sagemaker-training==5.1.4", "mxnet==1.9.1"]'
        )
    module = entry.get("training_module")
    if module is not None and (not isinstance(module, str) or not _MODULE.match(module)):
        raise ImageError(f'{where}: "training_module" must be "module:function", not {module!r}')
    return Framework(
        name=match["name"],
        version=match["version"],
        requirements=tuple(line.strip() for line in requirements),
        training_module=module,
    )


def names_a_framework(image: str) -> bool:
    """True when `image` is written as a framework image: `dockyard/<name>[:<version>]`, or an
    ECR URI whose repository is named as SageMaker's framework images are (`sagemaker-*`,
    `*-training`, `*-inference`, `huggingface-*`, `sklearn-*`, `xgboost`), known or not: the
    process runtime builds it, or says which frameworks it knows. Any other ECR URI is an image
    of one's own."""
    if _DOCKYARD_NAME.match(image):
        return True
    ecr = _ECR_URI.match(image)
    if ecr is None:
        return False
    repository = ecr["repository"].rsplit("/", 1)[-1]
    return (
        repository.startswith(("sagemaker-", "huggingface-", "sklearn-"))
        or repository.endswith(("-training", "-inference"))
        or repository == "xgboost"
    )


def _parse(image: str) -> _Request | None:
    dockyard = _DOCKYARD_NAME.match(image)
    if dockyard:
        if dockyard["tag"] is None and Path(image).exists():
            return None  # a folder that happens to be called dockyard/<name>
        name = dockyard["name"]
        version = dockyard["tag"] if dockyard["tag"] not in (None, "latest") else None
        return _Request(name, version, display=image)
    ecr = _ECR_URI.match(image)
    if ecr is None:
        return None
    repository = ecr["repository"].rsplit("/", 1)[-1]
    tag = ecr["tag"] or ""
    name = _repository_framework(repository)
    version_match = _TAG_VERSION.match(tag)
    version = version_match.group(1) if version_match else None
    if name == "huggingface":
        transformers = _TRANSFORMERS.search(tag)
        version = transformers.group(1) if transformers else None
    gpu = bool(re.search(r"(^|-)(gpu|cu\d+)($|-)", tag))
    display = f"{repository}:{tag}" if tag else repository
    return _Request(name, version, gpu=gpu, display=display)


def _repository_framework(repository: str) -> str:
    if repository.startswith("huggingface-"):
        return "huggingface"
    if repository == "sagemaker-scikit-learn" or repository.startswith("sklearn-"):
        return "sklearn"
    if repository in ("sagemaker-xgboost", "xgboost"):
        return "xgboost"
    # pytorch-training, tensorflow-training, mxnet-training, sagemaker-foo → pytorch, ..., foo
    name = repository.removeprefix("sagemaker-")
    return name.removesuffix("-training")


def _nearest(candidates: list[Framework], version: str | None) -> tuple[Framework, bool]:
    """The candidate matching `version` (and True), or the nearest one (and False)."""
    newest = max(candidates, key=lambda f: _numbers(f.version))
    if version is None:
        return newest, False
    asked = _numbers(version)
    for framework in candidates:
        if framework.version == version:
            return framework, True
    for framework in candidates:
        known = _numbers(framework.version)
        if asked and known and (asked[: len(known)] == known or known[: len(asked)] == asked):
            return framework, True

    def distance(framework: Framework) -> tuple[tuple[int, ...], tuple[int, ...]]:
        known = _numbers(framework.version)
        width = max(len(known), len(asked))
        padded = [(known + (0,) * width)[:width], (asked + (0,) * width)[:width]]
        differences = tuple(abs(a - b) for a, b in zip(*padded, strict=True))
        return differences, tuple(-n for n in known)  # a tie goes to the newer version

    return min(candidates, key=distance), False


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _display(name: str) -> str:
    return _DISPLAY.get(name, name)


def _unknown_message(image: str, name: str, known: Mapping[str, Framework]) -> str:
    versions: dict[str, list[str]] = {}
    for framework in known.values():
        versions.setdefault(framework.name, []).append(framework.version)
    listing = "; ".join(f"{n} {', '.join(v)}" for n, v in versions.items())
    return (
        f"image {image}: dockyard knows no framework {name!r}. Known frameworks: {listing} "
        "(as dockyard/<framework>:<version> or a SageMaker framework image URI). To add one, "
        'write a JSON file mapping "name:version" to {"requirements": [pinned pip lines, '
        'sagemaker-training included], "training_module": "module:function"} and name it in '
        "DOCKYARD_FRAMEWORKS_FILE; an image of your own is a folder with a Dockerfile"
    )
