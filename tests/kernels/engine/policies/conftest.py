"""The LLM policy tests share the local OpenAI-protocol server of tests/llm."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "llm"))
