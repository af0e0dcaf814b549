"""Every way AWS says "this instance is going away" ends in the same drain signal.

Sources (each a small monitor behind one interface): the Spot two-minute notice, the rebalance
recommendation (a hint, drained on only with ON_REBALANCE=drain), and Auto Scaling's target lifecycle state
turning Terminated (scale-in, instance refresh). After a drain the worker completes the group's termination
lifecycle hook, and while it holds work it can keep scale-in protection on.
"""
