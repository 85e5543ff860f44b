#!/usr/bin/env python3
"""Refreshes the options tables of docs/plan-authoring.md from the plugins' declarations.

Each table block sits between `<!-- options: model NAME -->` (or `rule KIND`) and
`<!-- end options -->`; this replaces what is between them with what
`tariff schema --format markdown` renders for that plugin. The test
`SchemaTests.theGuideTablesAreTheDeclarations` fails when the two differ.

    swift build --product tariff && tools/plugin_docs.py [.build/debug/tariff]
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- options: ([a-z]+ [A-Za-z0-9_.-]+) -->\n)(.*?)(\n<!-- end options -->)", re.S)


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/debug/tariff")
    rendered = subprocess.run([binary, "schema", "--format", "markdown"], check=True, capture_output=True, text=True).stdout
    blocks = {m.group(2): m.group(3) for m in BLOCK.finditer(rendered)}
    guide = ROOT / "docs/plan-authoring.md"
    text = guide.read_text()
    seen = set()

    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in blocks:
            raise SystemExit(f"docs/plan-authoring.md has a block for '{name}', which no plugin declares")
        seen.add(name)
        return match.group(1) + blocks[name] + match.group(4)

    text = BLOCK.sub(replace, text)
    missing = sorted(set(blocks) - seen)
    if missing:
        print("no block in docs/plan-authoring.md for: " + ", ".join(missing), file=sys.stderr)
    guide.write_text(text)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
