"""Print the commands of the README's opening block, one per line, for .ci/run to execute literally.

The README promises a newcomer two commands; CI runs exactly those, so they cannot drift from what
is tested. The block is the first ```bash fence; comments and blank lines are skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def opening_commands(text: str) -> list[str]:
    lines = text.splitlines()
    try:
        start = lines.index("```bash") + 1
        end = lines.index("```", start)
    except ValueError as exc:
        raise SystemExit("README.md has no ```bash block with the opening commands") from exc
    return [line.strip() for line in lines[start:end] if line.strip() and not line.lstrip().startswith("#")]


def main() -> int:
    commands = opening_commands(README.read_text(encoding="utf-8"))
    if len(commands) != 2:
        print(f"README.md opens with {len(commands)} commands, expected 2: {commands}", file=sys.stderr)
        return 1
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
