"""Benchmarks (not tests): they print figures; `make bench` runs them all."""
