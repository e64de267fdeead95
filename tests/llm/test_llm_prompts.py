"""The last fenced python block of an answer is the code taken; other languages and no block are told apart."""

from __future__ import annotations

from qimeng.llm.prompts import last_code_block


def test_the_last_python_block_is_taken() -> None:
    answer = "First try:\n```python\nx = 1\n```\nBetter:\n```Python\nx = 2\n```\n```bash\nls\n```\n"
    assert last_code_block(answer) == "x = 2\n"


def test_no_python_block_is_none() -> None:
    assert last_code_block("Use torch.relu.\n```bash\npip install torch\n```\n") is None
    assert last_code_block("```python\nunterminated = True\n") is None
