"""`filefleet simulate`: the queue and the Auto Scaling group, simulated minute by minute before paying.

Modules, one concept each:

* :mod:`app.simulate.settings`: every input (traffic, work, fleet, scaling, prices) with its source.
* :mod:`app.simulate.arrivals`: when files land (steady, daily batch, bursts, or a CSV of timestamps).
* :mod:`app.simulate.fleet`: an instance's life (launch, in service, warm, drain, kill), the On-Demand/Spot
  split of a mixed instances group, and per-second billing.
* :mod:`app.simulate.policies`: the CloudWatch alarms and the scaling policies (our target tracking with its
  scale-from-zero step policy, the guide's step policy, the guide's Lambda metric).
* :mod:`app.simulate.engine`: the simulation itself (per-file exact service, one-minute control steps).
* :mod:`app.simulate.report`: the summary (costs, waits, actions), the table, the JSON, ``--compare``.
* :mod:`app.simulate.plot`: the PNG (matplotlib, an optional extra).
* :mod:`app.simulate.cli`: ``add_simulate_parser`` for filefleet's argparse.
"""

from __future__ import annotations

from app.simulate.engine import RunResult, simulate
from app.simulate.settings import Settings

__all__ = ["RunResult", "Settings", "simulate"]
