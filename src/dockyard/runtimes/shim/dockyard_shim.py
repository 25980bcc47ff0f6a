"""dockyard's shim in a framework environment, imported by `dockyard_shim.pth` at interpreter start.

- When DOCKYARD_CODE_INSTALLED is set, dockyard has installed the code's requirements.txt (and its
  package, when it has a setup.py) into a layer before the sandbox started. Inside the sandbox the
  environment is read-only and pip would fail, so the toolkit's pip steps
  (`sagemaker_training.modules.install` / `install_requirements`, `sagemaker_containers._modules.
  install`) only log one line. The entry-point logic around them is untouched: the code folder is
  still put on sys.path, a `.sh` entry point is still made executable.
- The legacy `sagemaker_containers` subclasses `collections.Mapping`, which Python 3.10 removed:
  before it is imported, `collections` gets its old aliases of `collections.abc` back, so
  `sagemaker_containers.training_env()` works; its protobuf modules predate protobuf 3.19, so
  protobuf's pure-Python implementation is chosen for it unless the program chose.
- `pytorch_main`: the SAGEMAKER_TRAINING_MODULE of dockyard's PyTorch environments.

Importing it costs next to nothing: at start it touches only `os` and `sys` (loaded already) and
adds an import hook; the toolkits are patched when the program imports them. It imports nothing
of dockyard, which is not installed here.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs a few milliseconds at every interpreter start
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

CODE_INSTALLED = "DOCKYARD_CODE_INSTALLED"
INSTALLED_MESSAGE = (
    "dockyard installed the code's requirements before the sandbox started (layer %s)"
)
# The toolkit functions that run pip, by module; `install` also makes the code importable.
PIP_STEPS: dict[str, tuple[str, ...]] = {
    "sagemaker_training.modules": ("install", "install_requirements"),
    "sagemaker_containers._modules": ("install",),
}
DDP_MESSAGE = (
    "sagemaker_pytorch_ddp_enabled asks for SMDataParallel (mpirun with smddprun, GPUs only), "
    "which cannot run here: dockyard starts the script with torchrun (TorchDistributed) instead"
)


def pytorch_main() -> None:
    """The SageMaker PyTorch toolkit's `training:main`, except that `sagemaker_pytorch_ddp_enabled`
    (SMDataParallel, GPU-only) runs the torchrun runner instead, saying so in the log.

    Everything else is the toolkit's own: `sagemaker_torch_distributed_enabled` → torchrun, MPI
    when asked, otherwise one process per host; MASTER_ADDR = the first host, MASTER_PORT=7777."""
    # Imported here, not above: every process of the environment imports this module at start,
    # and most of them never train.
    from sagemaker_pytorch_container import training
    from sagemaker_training import entry_point, environment, runner

    env = environment.Environment()
    if not env.additional_framework_parameters.get("sagemaker_pytorch_ddp_enabled", False):
        training.train(env)
        return
    training.logger.info(DDP_MESSAGE)
    original = entry_point.run

    def run(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("runner_type") is runner.SMDataParallelRunnerType:
            kwargs["runner_type"] = runner.TorchDistributedRunnerType
        return original(*args, **kwargs)

    entry_point.run = run
    try:
        training.train(env)
    finally:
        entry_point.run = original


def _skip_pip(original: Callable[..., Any], module: ModuleType) -> Callable[..., Any]:
    import functools
    import logging

    module_logger = getattr(module, "logger", None) or logging.getLogger("dockyard-shim")
    makes_importable = original.__name__ == "install"

    @functools.wraps(original)
    def skipped(path: str, *args: Any, **kwargs: Any) -> Any:
        layer = os.environ.get(CODE_INSTALLED)
        if not layer:
            return original(path, *args, **kwargs)
        if makes_importable and path not in sys.path:
            sys.path.insert(0, path)  # what `pip install .` would have made importable
        module_logger.info(INSTALLED_MESSAGE, layer)
        return None

    skipped.__dockyard_original__ = original  # type: ignore[attr-defined]
    return skipped


def _patch(module: ModuleType) -> None:
    for name in PIP_STEPS.get(module.__name__, ()):
        function = getattr(module, name, None)
        if callable(function) and not hasattr(function, "__dockyard_original__"):
            setattr(module, name, _skip_pip(function, module))


def _restore_collections_aliases(module: ModuleType) -> None:
    import collections
    import collections.abc

    for name in collections.abc.__all__:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _old_toolkit_compatibility(module: ModuleType) -> None:
    """What `sagemaker_containers` (2.8, 2020) needs on today's Python and packages: the
    `collections` aliases, and protobuf's pure-Python descriptors, since its generated `_pb2`
    modules predate protobuf 3.19 and today's protobuf refuses them (it names that variable as the
    way out). Set only when the program has not chosen, and before protobuf is first imported."""
    _restore_collections_aliases(module)
    if "google.protobuf" not in sys.modules:
        os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")


# Run before a module's code (`BEFORE`), or after it (`AFTER`).
BEFORE: dict[str, Callable[[ModuleType], None]] = {
    "sagemaker_containers": _old_toolkit_compatibility,
}
AFTER: dict[str, Callable[[ModuleType], None]] = dict.fromkeys(PIP_STEPS, _patch)


class _PatchOnImport:
    """A meta path finder that lets the real finders find a toolkit module, then patches the
    module around its code."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in BEFORE and fullname not in AFTER:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            exec_module = getattr(spec.loader, "exec_module", None)
            if exec_module is not None:
                # A source file's loader is made for this one spec: nothing else changes.
                setattr(spec.loader, "exec_module", _around(exec_module))  # noqa: B010
            return spec
        return None


def _around(exec_module: Callable[[ModuleType], None]) -> Callable[[ModuleType], None]:
    def exec_and_patch(module: ModuleType) -> None:
        # Keyed by the module's name: a no-op for other modules, should the loader be shared.
        BEFORE.get(module.__name__, _nothing)(module)
        exec_module(module)
        AFTER.get(module.__name__, _nothing)(module)

    return exec_and_patch


def _nothing(module: ModuleType) -> None:
    pass


def _install() -> None:
    for name in AFTER:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)
    if "sagemaker_containers" in sys.modules:
        _restore_collections_aliases(sys.modules["sagemaker_containers"])
    sys.meta_path.insert(0, _PatchOnImport())


_install()
