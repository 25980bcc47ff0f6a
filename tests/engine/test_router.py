"""The router's choices: a variant by weight, then the instance with the fewest requests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.engine.router import NoInstanceReady, Route, Variant


@dataclass
class FakeInstance:
    """Only what selection reads; the router's real I/O is tested against real sandboxes."""

    name: str
    in_flight: int = 0
    idle: list[Any] = field(default_factory=list)


def route(*variants: Variant) -> Route:
    return Route("endpoint", variants)


def test_the_instance_with_fewest_requests_in_flight_wins() -> None:
    a, b, c = FakeInstance("a", 3), FakeInstance("b", 1), FakeInstance("c", 2)
    r = route(Variant("AllTraffic", 1.0, (a, b, c)))  # type: ignore[arg-type]
    variant = r.variant(None)
    assert [r.instance(variant, set()).name for _ in range(5)] == ["b"] * 5  # type: ignore[union-attr]


def test_ties_go_round_the_instances() -> None:
    instances = tuple(FakeInstance(n) for n in "abc")
    r = route(Variant("AllTraffic", 1.0, instances))  # type: ignore[arg-type]
    variant = r.variant(None)
    picked = [r.instance(variant, set()).name for _ in range(6)]  # type: ignore[union-attr]
    assert sorted(picked) == ["a", "a", "b", "b", "c", "c"]


def test_failed_instances_are_skipped_then_none_is_left() -> None:
    a, b = FakeInstance("a"), FakeInstance("b")
    r = route(Variant("AllTraffic", 1.0, (a, b)))  # type: ignore[arg-type]
    variant = r.variant(None)
    assert r.instance(variant, {"a"}).name == "b"  # type: ignore[union-attr]
    assert r.instance(variant, {"a", "b"}) is None


def test_weights_share_the_traffic() -> None:
    random.seed(7)
    r = route(
        Variant("Blue", 9.0, (FakeInstance("b1"),)),  # type: ignore[arg-type]
        Variant("Green", 1.0, (FakeInstance("g1"),)),  # type: ignore[arg-type]
    )
    picks = [r.variant(None).name for _ in range(2000)]
    assert 1700 < picks.count("Blue") < 1900


def test_a_variant_without_instances_gets_nothing() -> None:
    r = route(
        Variant("Blue", 1.0, ()),
        Variant("Green", 1.0, (FakeInstance("g1"),)),  # type: ignore[arg-type]
    )
    assert {r.variant(None).name for _ in range(50)} == {"Green"}
    with pytest.raises(NoInstanceReady):
        route(Variant("Blue", 1.0, ())).variant(None)


def test_an_unknown_target_variant_is_a_validation_error() -> None:
    r = route(Variant("Blue", 1.0, ()))
    with pytest.raises(ValidationError, match="Target variant Red does not exist"):
        r.variant("Red")
    assert r.variant("Blue").name == "Blue"
