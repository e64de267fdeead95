"""Talking to any OpenAI-compatible model: client, response cache, prompt helpers. Domain-neutral: what a
kernel or hardware agent asks lives with that agent."""
