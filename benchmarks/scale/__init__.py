"""Parts of the operator scale benchmark (``benchmarks/operator_scale.py``)."""
