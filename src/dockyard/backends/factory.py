"""The backend a server runs hosts on, opened from its settings (DOCKYARD_BACKEND)."""

from __future__ import annotations

from dockyard.backends.base import Backend
from dockyard.backends.capacity import Capacity
from dockyard.backends.local import LocalBackend
from dockyard.contract.errors import ValidationError
from dockyard.runtimes.factory import Runtimes
from dockyard.settings import Settings


def open_backend(settings: Settings, runtimes: Runtimes, capacity: Capacity) -> Backend:
    if settings.backend == "local":
        return LocalBackend(runtimes, capacity)
    if settings.backend == "ray":
        try:
            # Imported here: ray loads only on a server that runs on a cluster.
            from dockyard.backends.ray_backend import RayBackend
        except ImportError as exc:
            raise ValidationError(
                f"DOCKYARD_BACKEND=ray needs Ray installed beside dockyard ({exc}): "
                "pip install 'dockyard[ray]'"
            ) from None
        return RayBackend(settings)
    raise ValidationError(f"the {settings.backend} backend does not exist; use local or ray")
