"""Policies propose the next macro steps for a schedule: expert rules now, learned/LLM policies later."""
