"""Experiments anyone can rerun: reference runs, the ablation, benchmarks and the write-up's own recipe."""
