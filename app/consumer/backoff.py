"""How long a failed message stays invisible before its next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_MAX_DOUBLINGS = 30  # 2**30 times any base is past the 12-hour SQS cap already


@dataclass(frozen=True)
class ExponentialBackoff:
    """Doubles with every receive (from the message's own ``ApproximateReceiveCount``), capped, with jitter.

    Equal jitter (half fixed, half random) spreads a burst of failures out without ever bringing a retry back
    at once, which full jitter would do for some of them.
    """

    base_seconds: int
    max_seconds: int
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_for(self, receive_count: int) -> int:
        doublings = min(max(receive_count, 1) - 1, _MAX_DOUBLINGS)
        ceiling = min(self.max_seconds, self.base_seconds * 2**doublings)
        return max(1, round(self.rng.uniform(ceiling / 2, ceiling)))
