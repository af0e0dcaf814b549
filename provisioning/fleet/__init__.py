"""`filefleet fleet deploy|rollout|status|destroy`: the operator's commands for the fleet's stack.

One concept per module: ``aws`` (session, credentials, clients), ``template`` and ``parameters`` (what is
deployed), ``stack`` (a stack's state and what may be done in it), ``changeset`` and ``diff`` (the reviewed
change), ``progress`` and ``polling`` (waiting, with events as they arrive), ``refresh`` (instance refreshes),
``deploy``, ``rollout``, ``status``, ``destroy`` (the commands) and ``cli`` (argparse and exit codes).
"""
