"""The README's example programs, as the tests run them: each is the ```python block that follows an
`<!-- example: NAME ... -->` line, so what a reader copies is what was tested."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(name: str) -> str:
    """The source of the README's example `name` (e.g. "queue_room.py")."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        rf"^<!-- example: {re.escape(name)}\b[^\n]*-->\n```python\n(?P<code>.*?)^```$", text, re.M | re.S
    )
    if found is None:
        raise AssertionError(f"README.md has no ```python block after <!-- example: {name} ... -->")
    return found["code"]


def load_readme_example(name: str, folder: Path) -> ModuleType:
    """The example written to `folder` and imported as a module of its own (its __main__ part not run)."""
    path = folder / name
    path.write_text(readme_example(name), encoding="utf-8")
    module_name = f"readme_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
