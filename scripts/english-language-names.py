#!/usr/bin/env python3
"""Write translator_bot/language_names_en.json and language_names_en_more.json: the English name of
every language, script and region subtag, exactly as langcodes names them (from the installed
language_data); the second file holds the languages without a two-letter code, read only when named.

The bot names languages only in English; langcodes' own lookup loads the names of every subtag in
every language (a 4.6 MB module: ~17 MiB of memory and ~80 ms for each bot). This table holds just
the English ones. Run it after upgrading langcodes or language_data; tests/unit/test_languages_names.py
fails while the table and the installed libraries disagree.

    python scripts/english-language-names.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from translator_bot.languages import MORE_NAMES_PATH, NAMES_PATH, build_name_table, split_name_table


def main() -> None:
    for path, table in zip((NAMES_PATH, MORE_NAMES_PATH), split_name_table(build_name_table()), strict=True):
        path.write_text(json.dumps(table, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
        sizes = ", ".join(f"{len(names)} {kind} names" for kind, names in table.items())
        print(f"wrote {path}: {sizes}")


if __name__ == "__main__":
    main()
