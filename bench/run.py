"""Run every benchmark in this folder: each ``bench/<name>.py`` with a ``main()`` function.

``make bench`` runs this against ``DATABASE_URL`` (PostgreSQL); each benchmark builds its own
throw-away database next to it, so the database named in the URL is never touched.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    only = {arg for arg in sys.argv[1:] if not arg.startswith("-")}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in {"run", "__init__"} or (only and path.stem not in only):
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        if hasattr(module, "main"):
            print(f"== bench/{path.name}")
            module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
