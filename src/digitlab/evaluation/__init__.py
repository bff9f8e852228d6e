"""Evaluation: test-set scores, metrics, calibration, and the network health diagnosis."""
