#!/usr/bin/env bash
# The README's test command: install qimeng with its test, LLM-client and Ray extras and run the CPU test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev,llm,ray]"
python3 -m pytest -q -n 2 --timeout 600 tests "$@"
