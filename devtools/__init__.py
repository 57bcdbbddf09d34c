"""Development tooling: the local mode, the DynamoDB Local runner and the template reader.

Never shipped to Lambda: nothing under `layers/` or `functions/` may import this package.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: where template.yaml, functions/ and node_modules/ live."""
