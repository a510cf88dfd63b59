"""What the methods cost: per-step benchmarks, grid wall time, and the size and speed of pruned networks."""
