"""Instance types and what each one asks of a machine: vCPUs, memory and GPUs."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.contract.errors import ValidationError


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0

    @property
    def is_whole_machine(self) -> bool:
        """`local` and `local_gpu` (SageMaker local mode's names) ask for the whole machine."""
        return self.name in ("local", "local_gpu")


def _family(prefix: str, sizes: dict[str, tuple[int, float, int]]) -> dict[str, InstanceType]:
    return {
        f"{prefix}.{size}": InstanceType(f"{prefix}.{size}", vcpus, mem, gpus)
        for size, (vcpus, mem, gpus) in sizes.items()
    }


_GENERAL = {
    "large": (2, 8.0, 0),
    "xlarge": (4, 16.0, 0),
    "2xlarge": (8, 32.0, 0),
    "4xlarge": (16, 64.0, 0),
    "12xlarge": (48, 192.0, 0),
    "24xlarge": (96, 384.0, 0),
}
_COMPUTE = {k: (v, m / 2, g) for k, (v, m, g) in _GENERAL.items()}
_MEMORY = {k: (v, m * 2, g) for k, (v, m, g) in _GENERAL.items()}

INSTANCE_TYPES: dict[str, InstanceType] = {
    "local": InstanceType("local", 0, 0.0),
    "local_gpu": InstanceType("local_gpu", 0, 0.0, gpus=1),
    **_family(
        "ml.t3",
        {
            "medium": (2, 4.0, 0),
            "large": (2, 8.0, 0),
            "xlarge": (4, 16.0, 0),
            "2xlarge": (8, 32.0, 0),
        },
    ),
    **_family(
        "ml.m4",
        {
            "xlarge": (4, 16.0, 0),
            "2xlarge": (8, 32.0, 0),
            "4xlarge": (16, 64.0, 0),
            "10xlarge": (40, 160.0, 0),
            "16xlarge": (64, 256.0, 0),
        },
    ),
    **_family("ml.m5", _GENERAL),
    **_family("ml.m6i", _GENERAL),
    **_family(
        "ml.c4",
        {
            "xlarge": (4, 7.5, 0),
            "2xlarge": (8, 15.0, 0),
            "4xlarge": (16, 30.0, 0),
            "8xlarge": (36, 60.0, 0),
        },
    ),
    **_family(
        "ml.c5",
        {
            "xlarge": (4, 8.0, 0),
            "2xlarge": (8, 16.0, 0),
            "4xlarge": (16, 32.0, 0),
            "9xlarge": (36, 72.0, 0),
            "18xlarge": (72, 144.0, 0),
        },
    ),
    **_family("ml.c6i", _COMPUTE),
    **_family("ml.r5", _MEMORY),
    **_family(
        "ml.p3", {"2xlarge": (8, 61.0, 1), "8xlarge": (32, 244.0, 4), "16xlarge": (64, 488.0, 8)}
    ),
    **_family("ml.p4d", {"24xlarge": (96, 1152.0, 8)}),
    **_family(
        "ml.g4dn",
        {
            "xlarge": (4, 16.0, 1),
            "2xlarge": (8, 32.0, 1),
            "4xlarge": (16, 64.0, 1),
            "8xlarge": (32, 128.0, 1),
            "12xlarge": (48, 192.0, 4),
        },
    ),
    **_family(
        "ml.g5",
        {
            "xlarge": (4, 16.0, 1),
            "2xlarge": (8, 32.0, 1),
            "4xlarge": (16, 64.0, 1),
            "12xlarge": (48, 192.0, 4),
            "48xlarge": (192, 768.0, 8),
        },
    ),
}


def instance_type(name: str) -> InstanceType:
    """Look an instance type up, or say which ones exist."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        families = sorted({n.rsplit(".", 1)[0] for n in INSTANCE_TYPES if n.startswith("ml.")})
        raise ValidationError(
            f"unknown instance type {name!r}: use 'local' (the whole machine) or an ml.* type "
            f"such as ml.m5.large (families: {', '.join(families)})"
        ) from None
