"""The user's tools: example OpenAI client, LLMPerf-style benchmark with cost, first-hour commands, Open WebUI locally."""
