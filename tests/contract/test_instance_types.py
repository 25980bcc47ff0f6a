"""The family table and the size rule: every type botocore lists is sized; named ones exactly."""

from __future__ import annotations

import pytest
from botocore.loaders import create_loader

from dockyard.contract.errors import ValidationError
from dockyard.contract.instance_types import FAMILIES, InstanceType, instance_type

ENUMS = ("TrainingInstanceType", "ProductionVariantInstanceType", "TransformInstanceType")


def botocore_types() -> list[str]:
    """Every instance type of the three enums of botocore's SageMaker model (the test reads
    botocore, as the API edge does; dockyard keeps no list of its own)."""
    shapes = create_loader().load_service_model("sagemaker", "service-2")["shapes"]
    return sorted({name for enum in ENUMS for name in shapes[enum]["enum"]})


@pytest.mark.parametrize("name", botocore_types())
def test_every_botocore_type_has_a_size(name: str) -> None:
    sized = instance_type(name)
    assert sized.vcpus >= 1 and sized.memory_gib >= 1, sized
    assert sized.gpus >= 0 and not sized.is_whole_machine


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib", "gpus"),
    [
        ("ml.p2.xlarge", 4, 61.0, 1),  # the first article's training type: one K80
        ("ml.p2.16xlarge", 64, 732.0, 16),  # a size where the family's ratio does not hold
        ("ml.t2.medium", 2, 4.0, 0),  # the second article's endpoint type
        ("ml.m5.large", 2, 8.0, 0),
        ("ml.m4.10xlarge", 40, 160.0, 0),
        ("ml.c4.8xlarge", 36, 60.0, 0),
        ("ml.c5.9xlarge", 36, 72.0, 0),
        ("ml.r5.large", 2, 16.0, 0),
        ("ml.c8g.medium", 1, 2.0, 0),
        ("ml.p3.8xlarge", 32, 244.0, 4),
        ("ml.g4dn.12xlarge", 48, 192.0, 4),
        ("ml.g5.16xlarge", 64, 256.0, 1),
        ("ml.g5.48xlarge", 192, 768.0, 8),
        ("ml.inf2.xlarge", 4, 16.0, 0),  # Inferentia chips are not GPUs
    ],
)
def test_the_table_gives_ec2s_sizes(name: str, vcpus: int, memory_gib: float, gpus: int) -> None:
    assert instance_type(name) == InstanceType(name, vcpus, memory_gib, gpus)


def test_sizes_and_families_the_table_lacks_follow_the_rule() -> None:
    # A size the family's entry does not list: vCPUs from the name, memory from the family's
    # ratio, GPUs from the nearest listed size that is not bigger.
    assert instance_type("ml.m5.8xlarge") == InstanceType("ml.m5.8xlarge", 32, 128.0)
    assert instance_type("ml.p3.4xlarge") == InstanceType("ml.p3.4xlarge", 16, 122.0, 1)
    # A family the table lacks: sized by its class letter; classes g and p have GPUs.
    assert "m99" not in FAMILIES and "g99" not in FAMILIES
    assert instance_type("ml.m99.2xlarge") == InstanceType("ml.m99.2xlarge", 8, 32.0)
    assert instance_type("ml.r99.large") == InstanceType("ml.r99.large", 2, 16.0)
    assert instance_type("ml.g99.xlarge").gpus == 1
    assert instance_type("ml.g99.48xlarge").gpus == 8


def test_local_mode_names_are_the_whole_machine() -> None:
    assert instance_type("local").is_whole_machine and instance_type("local").gpus == 0
    assert instance_type("local_gpu").is_whole_machine and instance_type("local_gpu").gpus == 1


@pytest.mark.parametrize("name", ["", "m5.large", "ml.m5", "ml.m5.huge", "ML.M5.LARGE"])
def test_what_is_no_instance_type_is_refused_with_the_way_out(name: str) -> None:
    with pytest.raises(ValidationError, match="is not an instance type: use 'local'"):
        instance_type(name)
