"""SageMaker SDK v1 spellings, accepted with a DeprecationWarning naming the v2 one (the table of
reference §7.1). Every estimator's constructor goes through `accepts_v1_names`."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

V1_ARGUMENTS: dict[str, str] = {
    "image_name": "image_uri",
    "train_instance_count": "instance_count",
    "train_instance_type": "instance_type",
    "train_volume_size": "volume_size",
    "train_volume_kms_key": "volume_kms_key",
    "train_max_run": "max_run",
    "train_use_spot_instances": "use_spot_instances",
    "train_max_wait": "max_wait",
    "distributions": "distribution",
}

Init = TypeVar("Init", bound=Callable[..., None])
C = TypeVar("C", bound=type)


def warn_v1_name(old: str, new: str, *, stacklevel: int) -> None:
    warnings.warn(
        f"{old} is the SageMaker SDK v1 name; use {new}", DeprecationWarning, stacklevel=stacklevel
    )


def rename_v1_arguments(
    owner: str, kwargs: dict[str, Any], positional: set[str], *, stacklevel: int
) -> dict[str, Any]:
    """`kwargs` with every v1 name replaced by its v2 name, one warning per v1 name used
    (`stacklevel` as warnings.warn would take it here). `positional` holds the parameters already
    given by position; giving a parameter under both names is a TypeError, as giving any
    parameter twice is."""
    renamed = dict(kwargs)
    for old, new in V1_ARGUMENTS.items():
        if old not in renamed:
            continue
        if new in renamed or new in positional:
            raise TypeError(
                f"{owner}() got both {old} (the SageMaker SDK v1 name) and {new} (the v2 name) "
                f"for one argument; pass only {new}"
            )
        warn_v1_name(old, new, stacklevel=stacklevel + 2)
        renamed[new] = renamed.pop(old)
    return renamed


def accepts_v1_names(init: Init) -> Init:
    """Let a constructor take the v1 argument names of V1_ARGUMENTS as well as its own."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            positional = set(signature.bind_partial(self, *args).arguments)
        except TypeError:
            positional = set()  # too many positional arguments: the call below says so
        # The warning points at the caller's line, as if this wrapper had warned.
        renamed = rename_v1_arguments(type(self).__name__, kwargs, positional, stacklevel=2)
        init(self, *args, **renamed)

    return wrapper  # type: ignore[return-value]


def deprecated_alias(cls: C, old_name: str, new_name: str) -> C:
    """A subclass of `cls` named after `old_name` whose construction warns to use `new_name`."""
    base: Any = cls

    class Alias(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            warn_v1_name(old_name, new_name, stacklevel=3)
            super().__init__(*args, **kwargs)

    Alias.__name__ = Alias.__qualname__ = old_name.rsplit(".", 1)[-1]
    Alias.__doc__ = f"Deprecated (SageMaker SDK v1): use {new_name}."
    return cast(C, Alias)
