"""What an instance type asks of a machine (vCPUs, memory, GPUs): a family table and a size rule."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.contract.errors import ValidationError

# SageMaker local mode's names: the whole machine (`local_gpu` with its GPUs, at least one).
LOCAL_TYPES = ("local", "local_gpu")


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0

    @property
    def is_whole_machine(self) -> bool:
        """`local` and `local_gpu` (SageMaker local mode's names) ask for the whole machine."""
        return self.name in LOCAL_TYPES


@dataclass(frozen=True)
class Family:
    """One instance family: memory per vCPU, its GPUs by size (GPU families only), and the
    sizes where EC2 departs from the rule, as (vCPUs, GiB)."""

    gib_per_vcpu: float
    gpus: Mapping[str, int] = field(default_factory=dict)
    sizes: Mapping[str, tuple[int, float]] = field(default_factory=dict)


# Which operation allows which type is botocore's business (its TrainingInstanceType,
# ProductionVariantInstanceType and TransformInstanceType enums, checked at the API edge); this
# table only says how big each family is. Sizes follow the rule of EC2's names: `medium` is 1
# vCPU, `large` 2, `xlarge` 4, `<N>xlarge` 4N; memory is vCPUs times the family's GiB per vCPU.
_GENERAL, _COMPUTE, _MEMORY = Family(4.0), Family(2.0), Family(8.0)
_BURSTABLE = Family(4.0, sizes={"medium": (2, 4.0)})
# GPUs of the G families by size: one, except the 12, 24 and 48xlarge multi-GPU sizes.
_ONE_GPU = dict.fromkeys(["xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge"], 1)
_G_GPUS = {**_ONE_GPU, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}
_EIGHT_GPU_NODE = Family(2048 / 192, gpus={"48xlarge": 8})  # 192 vCPUs, 2 TiB

FAMILIES: dict[str, Family] = {
    **dict.fromkeys(
        ["m4", "m5", "m5d", "m6g", "m6gd", "m6i", "m7i", "m7i-flex", "m8g", "m8i", "m8i-flex"],
        _GENERAL,
    ),
    **dict.fromkeys(["c5", "c5d", "c6g", "c6gd", "c6gn", "c6i", "c6in", "c7g"], _COMPUTE),
    **dict.fromkeys(["c7i", "c7i-flex", "c8g", "c8i", "c8i-flex"], _COMPUTE),
    **dict.fromkeys(
        ["r5", "r5d", "r6g", "r6gd", "r6i", "r7gd", "r7i", "r8g", "r8i", "r8i-flex"], _MEMORY
    ),
    "t2": _BURSTABLE,
    "t3": _BURSTABLE,
    "c4": Family(1.875, sizes={"8xlarge": (36, 60.0)}),
    "c5n": Family(2.625, sizes={"9xlarge": (36, 96.0), "18xlarge": (72, 192.0)}),
    # NVIDIA GPU families.
    "p2": Family(
        15.25, gpus={"xlarge": 1, "8xlarge": 8, "16xlarge": 16}, sizes={"16xlarge": (64, 732.0)}
    ),
    "p3": Family(7.625, gpus={"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}),
    "p3dn": Family(8.0, gpus={"24xlarge": 8}),
    "p4d": Family(12.0, gpus={"24xlarge": 8}),
    "p4de": Family(12.0, gpus={"24xlarge": 8}),
    "p5": Family(16.0, gpus={"4xlarge": 1, "48xlarge": 8}, sizes={"48xlarge": (192, 2048.0)}),
    "p5e": _EIGHT_GPU_NODE,
    "p5en": _EIGHT_GPU_NODE,
    "p6-b200": _EIGHT_GPU_NODE,
    "p6-b300": Family(4096 / 192, gpus={"48xlarge": 8}),
    "p6e-gb200": Family(960 / 144, gpus={"36xlarge": 4}),
    "g4dn": Family(4.0, gpus={**_ONE_GPU, "12xlarge": 4}),
    "g5": Family(4.0, gpus=_G_GPUS),
    "g6": Family(4.0, gpus=_G_GPUS),
    "g6e": Family(8.0, gpus=_G_GPUS),
    # Inferentia, Trainium and Gaudi accelerators are not GPUs: these run on the CPU anyway.
    "inf1": _COMPUTE,
    "inf2": _GENERAL,
    "trn1": _GENERAL,
    "trn1n": _GENERAL,
    "trn2": Family(2048 / 192),
    "dl1": _MEMORY,
}

# A family the table lacks (botocore adds them) is sized by its class, the letters its name
# starts with; classes p and g have NVIDIA GPUs, one per 24 vCPUs and at least one.
_CLASS_GIB_PER_VCPU = {"c": 2.0, "m": 4.0, "r": 8.0, "t": 4.0, "x": 16.0, "g": 4.0, "p": 8.0}
_GPU_CLASSES = frozenset({"g", "p"})
_VCPUS_PER_CLASS_GPU = 24

_NAME = re.compile(r"ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>medium|large|\d*xlarge)")


def instance_type(name: str) -> InstanceType:
    """The vCPUs, memory and GPUs of `name`: `local`, `local_gpu` or any `ml.<family>.<size>`.
    Whether an operation allows the type is checked at the API edge, from botocore's model."""
    if name == "local":
        return InstanceType(name, 0, 0.0)
    if name == "local_gpu":
        return InstanceType(name, 0, 0.0, gpus=1)
    return _sized(name)


@functools.cache
def _sized(name: str) -> InstanceType:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValidationError(
            f"{name!r} is not an instance type: use 'local' (the whole machine), 'local_gpu', or "
            "an ml.<family>.<size> type SageMaker offers, such as ml.m5.large"
        )
    family_name, size = match["family"], match["size"]
    family = FAMILIES.get(family_name)
    vcpus = _size_vcpus(size)
    if family is None:
        return _by_class(name, family_name, vcpus)
    vcpus, memory = family.sizes.get(size, (vcpus, vcpus * family.gib_per_vcpu))
    return InstanceType(name, vcpus, memory, _family_gpus(family, size, vcpus))


def _size_vcpus(size: str) -> int:
    if size == "medium":
        return 1
    if size == "large":
        return 2
    return 4 * int(size.removesuffix("xlarge") or 1)


def _family_gpus(family: Family, size: str, vcpus: int) -> int:
    """The table's count, or for a size it lacks, that of the largest listed size that is not
    bigger (the smallest listed one if all are)."""
    if not family.gpus:
        return 0
    if size in family.gpus:
        return family.gpus[size]
    listed = sorted((_size_vcpus(s), g) for s, g in family.gpus.items())
    fitting = [gpus for listed_vcpus, gpus in listed if listed_vcpus <= vcpus]
    return fitting[-1] if fitting else listed[0][1]


def _by_class(name: str, family: str, vcpus: int) -> InstanceType:
    letters = re.match(r"[a-z]+", family)
    kind = letters[0] if letters else ""
    memory = vcpus * _CLASS_GIB_PER_VCPU.get(kind, 4.0)
    gpus = max(1, vcpus // _VCPUS_PER_CLASS_GPU) if kind in _GPU_CLASSES else 0
    return InstanceType(name, vcpus, memory, gpus)
