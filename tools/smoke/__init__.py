"""Smoke test of a deployed endpoint (the pipeline runs it after each stage)."""
