"""MetricDefinitions applied to log lines: each regex's first group, parsed as a float."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence

from dockyard.contract.training_jobs import MetricDefinition
from dockyard.storage.metadata import MetricPoint
from dockyard.storage.metrics import DEFAULT_HOST


class MetricScanner:
    def __init__(self, definitions: Sequence[MetricDefinition]) -> None:
        self._patterns = [(d.name, re.compile(d.regex)) for d in definitions]

    def scan(
        self, line: str, at: float | None = None, host: str = DEFAULT_HOST
    ) -> list[MetricPoint]:
        """Every metric the line yields, as printed by `host`. A capture that is not a number
        is skipped, as SageMaker drops unparseable values (unconfirmed there; a user would
        expect no crash)."""
        points = []
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if match is None:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                points.append(MetricPoint(name, value, at if at is not None else time.time(), host))
        return points
