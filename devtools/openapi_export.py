"""`python -m devtools.openapi_export`: write docs/openapi.json from the code (a test fails on drift)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from devtools import REPO_ROOT

DOCUMENT = REPO_ROOT / "docs" / "openapi.json"


def render() -> str:
    os.environ.setdefault("TABLE_NAME", "openapi-export")  # settings are read lazily; nothing is called
    from loyalty.http.openapi import openapi_document

    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main(target: Path = DOCUMENT) -> None:
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
