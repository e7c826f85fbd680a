"""Benchmarks: memberflow against the raw database floor, measured in the same run."""
