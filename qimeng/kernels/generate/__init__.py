"""Full-kernel generation by an LLM (`qimeng generate`): the baseline that public leaderboards measure."""
