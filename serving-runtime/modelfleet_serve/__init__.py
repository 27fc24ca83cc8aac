"""modelfleet's serving runtime: the engine launcher (`modelfleet-serve`) and the benchmark client
(`modelfleet-bench`)."""
