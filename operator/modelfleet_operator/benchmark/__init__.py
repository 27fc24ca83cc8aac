"""The BenchmarkSweep controller."""
