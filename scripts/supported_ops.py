"""Print (or with ``--write`` put into README.md) the table of supported TFLite operators.

    .venv/bin/python scripts/supported_ops.py [--write]

The table comes from the importer's converters (``mcunet_tvm.frontend.tflite.importer``):
one row per builtin operator, the converter's docstring saying which variants it takes (and, marked
**16x8**, the int16 variant's where it has one), then which operators have int16 variants.
``tests/test_tflite_frontend.py`` checks that README.md holds the current table.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- supported-ops:begin -->\n", "<!-- supported-ops:end -->"


def readme_with_table(text: str, table: str) -> str:
    """``text`` with the block between the markers replaced by ``table``."""
    return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: BEGIN + table + END, text, flags=re.S)


def main() -> int:
    from mcunet_tvm.frontend.tflite.importer import supported_ops_markdown

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="update README.md in place")
    table = supported_ops_markdown()
    if not p.parse_args().write:
        print(table, end="")
        return 0
    README.write_text(readme_with_table(README.read_text(), table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
