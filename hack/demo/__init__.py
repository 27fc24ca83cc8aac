"""`make demo`: the lifecycle on the local cluster (``python -m hack.demo``)."""
