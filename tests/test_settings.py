"""Settings read from DOCKYARD_* variables: the hosts range of routed networks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dockyard.settings import Settings


def test_the_hosts_range_defaults_to_a_private_slash_12(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().hosts_cidr == "10.208.0.0/12"
    monkeypatch.setenv("DOCKYARD_HOSTS_CIDR", "172.20.0.0/16")
    assert Settings().hosts_cidr == "172.20.0.0/16"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10.208.0.1/12", "with the host bits zero"),
        ("hosts", "is not an IPv4 network"),
        ("fd00::/8", "is not an IPv4 network"),
        ("10.208.0.0/24", "needs a prefix of /23 or shorter"),
    ],
)
def test_a_bad_hosts_range_says_what_to_give(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("DOCKYARD_HOSTS_CIDR", value)
    with pytest.raises(ValidationError, match=says):
        Settings()
