"""Datasets: generators, the on-disk format, and its loader."""
