"""`modelfleet-bench`: load generator and metrics for LLM serving endpoints (metrics defined in
serving-runtime/README.md)."""
