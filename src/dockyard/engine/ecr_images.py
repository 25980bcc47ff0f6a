"""ECR image URIs (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`) resolved to the
registry behind dockyard's ECR API, and the sign-in a container engine needs to pull them."""

from __future__ import annotations

import re

from dockyard.engine.registry import Registry, RegistryAccess

# Any account and region: the seed flow tags images with the user's real account id, and
# they all name the one registry here. `.amazonaws.com.cn` in China, `dkr-ecr.<region>.on.aws`
# for dual-stack endpoints, `-fips` for FIPS ones.
ECR_REGISTRY = re.compile(
    r"[0-9]{12}\.(?:dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?"
    r"|dkr-ecr(?:-fips)?\.[a-z0-9-]+\.on\.aws)"
)


def ecr_repository_ref(ref: str) -> str | None:
    """`<repo>[:tag|@digest]` of an ECR image URI; None for any other reference."""
    host, slash, rest = ref.partition("/")
    if not slash or not rest or not ECR_REGISTRY.fullmatch(host.lower()):
        return None
    return rest


def locate(ref: str, registry_host: str) -> str:
    """`ref` on the registry at `registry_host` when it is an ECR image URI; else unchanged."""
    rest = ecr_repository_ref(ref)
    return ref if rest is None else f"{registry_host}/{rest}"


class EcrImages:
    """What the docker runtime takes: `locate(ref) -> ref` and `auth_for(ref) -> dict | None`.
    An ECR URI needs the registry (started if it is not running; RegistryUnavailable when
    there is none); any other reference is never an error and starts nothing."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def locate(self, ref: str) -> str:
        if ecr_repository_ref(ref) is None:
            return ref
        return locate(ref, self._registry.access().host)

    def auth_for(self, ref: str) -> dict[str, str] | None:
        """docker SDK auth_config for a reference on this registry (an ECR URI, or one
        already located); None for others, and for a registry that takes no password."""
        if ecr_repository_ref(ref) is not None:
            access: RegistryAccess | None = self._registry.access()
        else:
            access = self._registry.current()
        if access is None or access.password is None:
            return None
        if locate(ref, access.host).partition("/")[0] != access.host:
            return None
        return {"username": access.username, "password": access.password}
