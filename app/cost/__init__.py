"""`filefleet cost`: the fleet's monthly bill, and the guide's cost tables checked against their inputs.

- :mod:`app.cost.model`: the arithmetic (exact fractions, money rounded to cents once per line);
- :mod:`app.cost.guide`: the guide's printed figures and throughput claims, recomputed and flagged;
- :mod:`app.cost.report`: tables and ``--json``;
- :mod:`app.cost.command`: :func:`add_cost_parser`, the subcommand's options and exit codes.
"""

from app.cost.command import add_cost_parser, run_cost
from app.cost.model import GUIDE_INPUTS, CostInputs, Estimate, estimate

__all__ = ["GUIDE_INPUTS", "CostInputs", "Estimate", "add_cost_parser", "estimate", "run_cost"]
