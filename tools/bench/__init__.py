"""LLMPerf-style benchmark of an OpenAI-compatible endpoint (`python -m tools.bench`, `make bench`)."""
