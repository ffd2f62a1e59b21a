"""Analyses built on the probes: statistics, baselines, ground truth, weight statistics, verdicts."""
