"""Serving metrics into CloudWatch, the per-environment dashboard and alarms."""
