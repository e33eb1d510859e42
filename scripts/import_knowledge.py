#!/usr/bin/env python
"""Import knowledge files into the database of WXBOT_DATABASE_URL.

A thin wrapper of ``wxbot kb import`` with the same arguments, for places where the console
script is not installed:

    python scripts/import_knowledge.py knowledge/faq.txt [more files] [--skip-bad] [--dry-run]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from wxbot.cli import cli

    cli.main(args=["kb", "import", *sys.argv[1:]], prog_name="import_knowledge.py")


if __name__ == "__main__":
    main()
