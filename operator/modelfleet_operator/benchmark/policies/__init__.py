"""BenchmarkSweep policies: each decision in its own module, unit-tested alone."""
