"""What the doctor found: check results, the settings table, and which problems block which command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# ok: present and usable; warn: worth knowing, never blocks; missing: absent or unusable;
# invalid: a setting has a value the bot refuses.
Status = Literal["ok", "warn", "missing", "invalid"]
Use = Literal["join", "demo"]
Target = Literal["join", "demo", "all"]

PROBLEMS: frozenset[Status] = frozenset({"missing", "invalid"})
JOIN: frozenset[Use] = frozenset({"join"})
DEMO: frozenset[Use] = frozenset({"demo"})
BOTH: frozenset[Use] = frozenset({"join", "demo"})
NOBODY: frozenset[Use] = frozenset()


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    status: Status
    detail: str
    fix: str | None = None  # one actionable line, for anything that is not ok
    needed_for: frozenset[Use] = NOBODY  # the commands a problem here stops

    def blocks(self, target: Target) -> bool:
        if self.status not in PROBLEMS:
            return False
        if target == "all":
            return bool(self.needed_for)
        return target in self.needed_for


@dataclass(frozen=True)
class SettingRow:
    name: str  # the environment variable that sets it
    value: str  # as displayed: secrets masked
    source: str  # flag, env, the env file's name, or default
    secret: bool


@dataclass(frozen=True)
class Report:
    target: Target
    checks: list[Check]
    settings: list[SettingRow] = field(default_factory=list)
    settings_error: str | None = None

    def blocking(self) -> list[Check]:
        return [check for check in self.checks if check.blocks(self.target)]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking() else 0
