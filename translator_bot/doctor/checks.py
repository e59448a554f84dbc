"""Prerequisites on this machine: Python and packages for every command, Janus and friends for the demo."""

from __future__ import annotations

import re
from pathlib import Path

from translator_bot.doctor.model import BOTH, DEMO, NOBODY, Check
from translator_bot.doctor.probe import Probe
from translator_bot.extras import DEMO_EXTRA, DEMO_MODULES, INSTALL_DEMO

PYTHON = "Python"
DEMO_SECTION = "Demo and tests"
MIN_PYTHON = (3, 11)
PACKAGES = ("aiortc", "av", "openai", "aiohttp")
CHROMIUM = Path("/usr/bin/chromium")
JANUS_JS = Path("web") / "static" / "vendor" / "janus.js"
# `ip` lives in /usr/sbin, which is not on every user's PATH.
_IP_PATHS = (Path("/usr/sbin/ip"), Path("/sbin/ip"), Path("/usr/bin/ip"))
_JANUS_VERSION = re.compile(r"\((\d+\.\d+\.\d+)\)")
_INSTALL = "bash scripts/install.sh (or pip install translator-bot)"


def python_checks(probe: Probe) -> list[Check]:
    version = ".".join(map(str, probe.python_version))
    if probe.python_version[:2] >= MIN_PYTHON:
        python = Check(PYTHON, "python", "ok", f"{version} ({probe.python_executable})", needed_for=BOTH)
    else:
        python = Check(
            PYTHON,
            "python",
            "missing",
            f"{version} is too old: translator-bot needs Python >= 3.11",
            "install Python 3.11 or newer (Debian 12: apt-get install python3) and reinstall",
            BOTH,
        )
    if probe.bot_version.endswith("+unknown"):
        bot = Check(
            PYTHON,
            "translator-bot",
            "warn",
            "running from a source tree that was never installed (version unknown)",
            f"install it: {_INSTALL}",
        )
    else:
        bot = Check(PYTHON, "translator-bot", "ok", probe.bot_version)
    return [python, bot, *(_package_check(probe, name) for name in PACKAGES)]


def _package_check(probe: Probe, name: str) -> Check:
    try:
        version = probe.package_version(name)
    except Exception as exc:  # an import can fail in many ways (missing module, broken native library)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(PYTHON, name, "missing", f"cannot import: {reason}", f"reinstall: {_INSTALL}", BOTH)
    return Check(PYTHON, name, "ok", version, needed_for=BOTH)


def demo_extra_check(probe: Probe) -> Check:
    missing = probe.missing_modules(DEMO_MODULES)
    if missing:
        return Check(
            DEMO_SECTION,
            f"{DEMO_EXTRA} extra",
            "missing",
            f"{', '.join(missing)} not installed: fake-realtime and demo need them (join does not)",
            INSTALL_DEMO,
            DEMO,
        )
    return Check(DEMO_SECTION, f"{DEMO_EXTRA} extra", "ok", ", ".join(DEMO_MODULES), needed_for=DEMO)


def janus_checks(probe: Probe) -> list[Check]:
    binary = probe.which("janus")
    if binary is None:
        found = Check(
            DEMO_SECTION, "janus", "missing", "the janus binary is not on PATH", "apt-get install janus", DEMO
        )
    else:
        # Janus has no version option: its help text starts with the version banner.
        output = probe.command_output([binary, "--help"]) or ""
        match = _JANUS_VERSION.search(output)
        version = f" {match.group(1)}" if match else ""
        found = Check(DEMO_SECTION, "janus", "ok", f"{binary}{version}", needed_for=DEMO)
    return [found, _janus_plugins_check(probe)]


def _janus_plugins_check(probe: Probe) -> Check:
    lib = probe.janus_lib_dir()
    if lib is None:
        return Check(
            DEMO_SECTION,
            "janus plugins",
            "missing",
            "no Janus library folder with the VideoRoom plugin (libjanus_videoroom.so)",
            "apt-get install janus",
            DEMO,
        )
    websockets = lib / "transports" / "libjanus_websockets.so"
    if not probe.is_file(websockets):
        return Check(
            DEMO_SECTION,
            "janus plugins",
            "missing",
            f"VideoRoom found in {lib} but not the WebSockets transport ({websockets.name})",
            "apt-get install --reinstall janus (the WebSockets transport ships with it)",
            DEMO,
        )
    return Check(DEMO_SECTION, "janus plugins", "ok", f"VideoRoom and WebSockets in {lib}", needed_for=DEMO)


def ip_check(probe: Probe) -> Check:
    found = probe.which("ip") or next((str(p) for p in _IP_PATHS if probe.is_file(p)), None)
    if found is None:
        return Check(
            DEMO_SECTION,
            "ip",
            "missing",
            "the ip command (iproute2) is not installed",
            "apt-get install iproute2",
            DEMO,
        )
    return Check(DEMO_SECTION, "ip", "ok", found, needed_for=DEMO)


def private_network_check(probe: Probe) -> Check:
    error = probe.private_network_error()
    if error is not None:
        return Check(
            DEMO_SECTION,
            "private network",
            "missing",
            f"cannot make a network namespace: {error}",
            "run as root, allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
            "or give the container CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN)",
            DEMO,
        )
    return Check(
        DEMO_SECTION,
        "private network",
        "ok",
        "a network namespace can be made (tested in a child process)",
        needed_for=DEMO,
    )


def recordings_check(probe: Probe) -> Check:
    try:
        directory, languages_recorded = probe.recordings()
    except (OSError, ValueError) as exc:  # FixtureError is a ValueError
        return Check(
            DEMO_SECTION,
            "recordings",
            "missing",
            str(exc),
            "reinstall the package, or remake them: python scripts/make_fixtures.py (needs espeak-ng)",
            DEMO,
        )
    languages = ", ".join(sorted(set(languages_recorded)))
    return Check(
        DEMO_SECTION,
        "recordings",
        "ok",
        f"{len(languages_recorded)} recordings ({languages}) in {directory}",
        needed_for=DEMO,
    )


def chromium_check(probe: Probe) -> Check:
    if probe.is_file(CHROMIUM):
        return Check(DEMO_SECTION, "chromium", "ok", str(CHROMIUM))
    return Check(
        DEMO_SECTION,
        "chromium",
        "warn",
        f"{CHROMIUM} not found: only the meeting page's browser test needs it",
        "apt-get install chromium",
    )


def web_asset_checks(probe: Probe) -> list[Check]:
    janus_js = probe.package_dir / JANUS_JS
    have_js = probe.is_file(janus_js)
    if have_js:
        script = Check(DEMO_SECTION, "janus.js", "ok", str(janus_js))
    else:
        script = Check(
            DEMO_SECTION,
            "janus.js",
            "warn",
            f"{janus_js} is absent: the meeting page (translator-bot web) cannot load without it",
            "bash scripts/vendor-janus-js.sh (fetches it with npm)",
        )
    node, npm = probe.which("node"), probe.which("npm")
    if node and npm:
        tools = Check(DEMO_SECTION, "node/npm", "ok", f"{node}, {npm}")
    elif have_js:
        tools = Check(
            DEMO_SECTION, "node/npm", "ok", "not installed; not needed while janus.js is vendored", None
        )
    else:
        absent = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        tools = Check(
            DEMO_SECTION,
            "node/npm",
            "warn",
            f"{absent} not installed: scripts/vendor-janus-js.sh needs them to fetch janus.js",
            "apt-get install nodejs npm",
            NOBODY,
        )
    return [script, tools]


def system_checks(probe: Probe) -> list[Check]:
    return [
        *python_checks(probe),
        demo_extra_check(probe),
        *janus_checks(probe),
        ip_check(probe),
        private_network_check(probe),
        recordings_check(probe),
        chromium_check(probe),
        *web_asset_checks(probe),
    ]
