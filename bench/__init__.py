"""Benchmarks of the whole engine, one command per figure (see bench/README.md)."""
