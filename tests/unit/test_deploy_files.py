"""The deployment files in docker/: the Dockerfiles lint clean, the Kubernetes manifests validate
against the API schemas of specific Kubernetes releases, compose.yaml and the Job have the shape
the bot needs, every setting they name exists, the Janus configuration loads in Debian's Janus with
room 1234, and the image's install steps really run (docker/check-image-steps.sh, in place of
`docker build`, which needs an engine CI does not have)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from translator_bot.errors import ExitCode
from translator_bot.room import videoroom
from translator_bot.room.janus import JanusError, JanusSession
from translator_bot.settings import Settings, env_name
from translator_bot.system.netns import PrivateNetwork

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "janus" / "Dockerfile"]
K8S = DOCKER / "k8s"
# The oldest release with podFailurePolicy GA, and a newer one; both bundled by kubernetes-validate.
K8S_VERSIONS = ["1.31.0", "1.34.0"]
SETTING_NAME = re.compile(r"\b(?:TRANSLATOR|OPENAI|AZURE_OPENAI)_[A-Z0-9_]+\b")


# --- helpers -----------------------------------------------------------------------------------------


def tool(name: str) -> str:
    """A console script of the test venv (next to this interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not installed: bash scripts/install.sh --dev (it comes with the dev extras)"
        )
    return found


def dockerfile_lines(path: Path) -> list[str]:
    """Instructions with their continuation lines joined, comments dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def healthcheck_argv(path: Path) -> list[str]:
    checks = [line for line in dockerfile_lines(path) if line.startswith("HEALTHCHECK")]
    assert len(checks) == 1, f"{path}: expected one HEALTHCHECK, found {checks}"
    argv = json.loads(checks[0].split(" CMD ", 1)[1])
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def dockerfile_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_lines(path):
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def runtime_uid() -> int:
    users = [line for line in dockerfile_lines(DOCKER / "Dockerfile") if line.startswith("USER ")]
    return int(users[-1].split()[1].split(":")[0])


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def manifests() -> list[Path]:
    found = sorted(K8S.glob("*.yaml"))
    assert found, f"no Kubernetes manifests in {K8S}"
    return found


def render_job(meeting_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(K8S / "launch-job.sh"), "--print", meeting_id],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "IMAGE": "registry.example.org/translator-bot:0.1.0"},
    )


def the_job(documents: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = [doc for doc in documents if doc.get("kind") == "Job"]
    assert len(jobs) == 1, f"expected one Job, found {len(jobs)}"
    return jobs[0]


def janus_jcfg_value(path: Path, key: str) -> str:
    match = re.search(rf"^\s*{re.escape(key)}\s*=\s*\"?([^\"\n#]+?)\"?\s*(?:#.*)?$", path.read_text(), re.M)
    assert match is not None, f"{path} has no {key}"
    return match.group(1)


# --- Dockerfiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_lints_clean(dockerfile: Path) -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip(), f"hadolint:\n{done.stdout}{done.stderr}"
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        ignore = re.search(r"hadolint ignore=\S+(.*)", line)
        assert ignore is None or len(ignore.group(1).strip()) > 10, f"an ignore needs its reason: {line}"


def test_image_layout_agrees_with_its_install_scripts() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    runtime = (DOCKER / "install-runtime.sh").read_text(encoding="utf-8")
    env = dockerfile_env(DOCKER / "Dockerfile")
    transcripts = env["TRANSLATOR_TRANSCRIPT_DIR"]
    assert f"TRANSCRIPT_DIR={transcripts}\n" in runtime
    assert f"APP_UID={runtime_uid()}\n" in runtime
    assert f'VOLUME ["{transcripts}"]' in dockerfile
    # The health port is read from the settings (TRANSLATOR_METRICS_PORT), not written here.
    assert healthcheck_argv(DOCKER / "Dockerfile") == ["translator-bot", "healthcheck"]
    lines = dockerfile_lines(DOCKER / "Dockerfile")
    assert 'ENTRYPOINT ["translator-bot"]' in lines and 'CMD ["--help"]' in lines
    assert "EXPOSE 9464 8080" in lines
    # janus.js is vendored before the wheel is built, so the wheel carries it.
    order = [
        i for i, line in enumerate(lines) if "vendor-janus-js.sh" in line or "build-venv.sh /opt" in line
    ]
    assert len(order) == 2 and "vendor-janus-js.sh" in lines[order[0]], order
    for script in ("build-venv.sh", "install-runtime.sh", "check-image-steps.sh", "k8s/launch-job.sh"):
        done = subprocess.run(
            ["bash", "-n", str(DOCKER / script)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{script}: {done.stderr}"


# --- Kubernetes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("manifest", manifests(), ids=lambda p: p.name)
def test_manifest_validates(manifest: Path, version: str) -> None:
    import kubernetes_validate

    documents = [doc for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if doc]
    assert documents
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest.name} {doc['kind']} against Kubernetes {version}: {exc}")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("meeting_id", ["1234", "Room_A.2"])
def test_launch_job_renders_a_valid_job(meeting_id: str, version: str) -> None:
    import kubernetes_validate

    done = render_job(meeting_id)
    assert done.returncode == 0, done.stderr
    assert "${" not in done.stdout
    job = the_job([doc for doc in yaml.safe_load_all(done.stdout) if doc])
    kubernetes_validate.validate(job, version, strict=True)
    name = job["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name), name
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["join", "--", meeting_id]
    assert container["image"] == "registry.example.org/translator-bot:0.1.0"
    assert job["metadata"]["annotations"]["translator-bot/meeting-id"] == meeting_id


def test_launch_job_tells_meetings_apart_and_refuses_odd_ids() -> None:
    names = set()
    for meeting_id in ("Room_A", "room-a", "room_a"):
        done = render_job(meeting_id)
        assert done.returncode == 0, done.stderr
        names.add(the_job(list(yaml.safe_load_all(done.stdout)))["metadata"]["name"])
    assert len(names) == 3, names
    for bad in ("-x", "a b", "1234;rm", "x" * 65, ""):
        done = render_job(bad)
        assert done.returncode == 2 and "meeting id" in done.stderr, (bad, done.stderr)


def test_job_fits_the_bot() -> None:
    job = the_job([doc for doc in yaml.safe_load_all((K8S / "translator-bot-job.yaml").read_text()) if doc])
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    fail_job = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert len(fail_job) == 1
    codes = fail_job[0]["onExitCodes"]
    assert codes["operator"] == "In" and sorted(codes["values"]) == [2, 3, 4]
    assert int(ExitCode.PROVIDER_UNAVAILABLE) not in codes["values"]  # an outage is worth a retry
    # A meeting that ends is a success: exit 0 completes the Job, never fails it.
    assert all(0 not in r.get("onExitCodes", {}).get("values", []) for r in spec["podFailurePolicy"]["rules"])
    assert codes["containerName"] == container["name"]
    assert 1 <= spec["backoffLimit"] <= 5
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] >= 3600
    # The bot leaves within 5 s of SIGTERM; the grace period must cover that, with a margin.
    assert 6 <= pod["terminationGracePeriodSeconds"] <= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == runtime_uid()
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e["value"] for e in container["env"]}
    transcripts = env["TRANSLATOR_TRANSCRIPT_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[transcripts]] and "emptyDir" in volumes[mounts["/tmp"]]
    # The emptyDir goes with the pod: the transcript also goes to the log collector, line by line.
    assert Settings(_env_file=None, transcript_stdout=env["TRANSLATOR_TRANSCRIPT_STDOUT"]).transcript_stdout  # type: ignore[call-arg]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert port == int(env["TRANSLATOR_METRICS_PORT"]) == 9464
    # Only a dead process is restarted (liveness); a degraded bot is merely not ready.
    paths = {"startupProbe": "/livez", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
    for probe, path in paths.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ("metrics", 9464), probe
    resources = container["resources"]
    assert _cpu(resources["requests"]["cpu"]) <= _cpu(resources["limits"]["cpu"])
    assert _mem(resources["requests"]["memory"]) <= _mem(resources["limits"]["memory"])
    # Measured: ~148 MiB resident for a two-person meeting.
    assert _mem(resources["requests"]["memory"]) >= 148 * 2**20
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    config = [
        doc
        for path in manifests()
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc["kind"] in ("ConfigMap", "Secret")
    ]
    assert refs == {doc["metadata"]["name"] for doc in config}
    settings = next(doc for doc in config if doc["kind"] == "ConfigMap")["data"]
    assert {"TRANSLATOR_JANUS_URL", "TRANSLATOR_ICE_SERVERS"} <= set(settings)
    Settings(_env_file=None, **{k.removeprefix("TRANSLATOR_").lower(): v for k, v in settings.items()})  # type: ignore[call-arg]


def _cpu(text: str | int) -> float:
    value = str(text)
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _mem(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)


# --- compose ------------------------------------------------------------------------------------------


def test_compose_runs_janus_the_bot_and_the_page() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"janus", "bot", "web"}

    janus = services["janus"]
    assert (DOCKER / janus["build"]["context"] / "Dockerfile").is_file()
    assert janus["healthcheck"]["test"] == ["CMD", *healthcheck_argv(DOCKER / "janus" / "Dockerfile")]
    ws_port = janus_jcfg_value(DOCKER / "janus" / "janus.transport.websockets.jcfg", "ws_port")

    transcripts = dockerfile_env(DOCKER / "Dockerfile")["TRANSLATOR_TRANSCRIPT_DIR"]
    for name in ("bot", "web"):
        service = services[name]
        assert service["build"]["context"] == ".."
        assert (DOCKER / ".." / service["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert service["env_file"] == [{"path": "../.env", "required": False}]
        env = service["environment"]
        assert "OPENAI_API_KEY" in env and env["OPENAI_API_KEY"] is None, "OPENAI_API_KEY passes through"
        assert env["TRANSLATOR_JANUS_URL"] == f"ws://127.0.0.1:{ws_port}/"
        assert service["depends_on"]["janus"]["condition"] == "service_healthy"
        assert f"transcripts:{transcripts}" in service["volumes"]
        assert service["healthcheck"]["test"][0] == "CMD"
    for service in services.values():
        assert service["network_mode"] == "host"  # why: see the comment at the top of compose.yaml

    assert services["bot"]["command"] == ["join", "1234"]
    # Exit 0 (the meeting ended) is not restarted; exit 5 (the model provider unavailable for too long)
    # is: on-failure covers every non-zero code. The standing room 1234 is never left for being empty.
    assert str(services["bot"]["restart"]).startswith("on-failure")
    assert services["bot"]["environment"]["TRANSLATOR_EMPTY_ROOM_SECONDS"] == "0"
    assert services["bot"]["healthcheck"]["test"] == ["CMD", *healthcheck_argv(DOCKER / "Dockerfile")]
    web = services["web"]["command"]
    assert web[0] == "web" and web[web.index("--host") + 1] == "0.0.0.0"
    port = web[web.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/healthz" in services["web"]["healthcheck"]["test"][-1]
    assert "transcripts" in data["volumes"]


def test_every_setting_named_in_the_deploy_files_exists() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    # Each setting appears as `NAME=value`, commented out when its default is meant.
    documented = set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]+)=", example, re.M))
    real = {env_name(field) for field in Settings.model_fields}
    files = [
        DOCKER / "compose.yaml",
        DOCKER / "Dockerfile",
        *manifests(),
        *DOCKER.glob("*.sh"),
        *K8S.glob("*.sh"),
    ]
    named: dict[str, set[str]] = {}
    for path in files:
        for name in SETTING_NAME.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.name)
    assert {"OPENAI_API_KEY", "TRANSLATOR_JANUS_URL", "TRANSLATOR_ICE_SERVERS"} <= set(named)
    unknown = {name: sorted(where) for name, where in named.items() if not {name} <= documented & real}
    assert not unknown, f"not settings of translator-bot (.env.example / Settings): {unknown}"


# --- Janus configuration ---------------------------------------------------------------------------


def _tail(log: Path, chars: int = 3000) -> str:
    """The end of a small local log file (failure messages, the start-up lines)."""
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _connect(url: str, proc: asyncio.subprocess.Process, log: Path) -> JanusSession:
    for _ in range(100):
        if proc.returncode is not None:
            pytest.fail(f"janus exited with {proc.returncode} using docker/janus:\n{_tail(log)}")
        with contextlib.suppress(Exception):
            return await JanusSession.connect(url, timeout_s=2.0)
        await asyncio.sleep(0.1)
    pytest.fail(f"janus with docker/janus did not answer on {url}:\n{_tail(log)}")


async def _healthcheck_status() -> int:
    # The janus image's HEALTHCHECK, as written in docker/janus/Dockerfile.
    proc = await asyncio.create_subprocess_exec(
        *healthcheck_argv(DOCKER / "janus" / "Dockerfile"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 10.0)


@pytest.mark.janus
@pytest.mark.timeout(60)
async def test_janus_config_loads_with_room_1234(private_network: PrivateNetwork, tmp_path: Path) -> None:
    janus_bin = shutil.which("janus")
    if janus_bin is None:
        pytest.fail("the janus binary is not installed: apt-get install janus")
    folder = DOCKER / "janus"
    ws_port = janus_jcfg_value(folder / "janus.transport.websockets.jcfg", "ws_port")
    admin_key = janus_jcfg_value(folder / "janus.plugin.videoroom.jcfg", "admin_key")
    log = tmp_path / "janus.log"
    # The files as shipped; only the ICE address is the private namespace's (flags win over files).
    argv = [
        janus_bin,
        f"--configs-folder={folder}",
        f"--config={folder / 'janus.jcfg'}",
        f"--interface={private_network.ice_address}",
        f"--ice-enforce-list={private_network.ice_address}",
        "--disable-colors",
    ]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        session = await _connect(f"ws://127.0.0.1:{ws_port}/", proc, log)
        try:
            handle = await session.attach("janus.plugin.videoroom")
            assert await videoroom.room_exists(handle, 1234)
            assert not await videoroom.room_exists(handle, 4321)
            # The admin key is loaded: creating a room needs it.
            with pytest.raises(JanusError):
                await videoroom.create_room(handle, 4321, admin_key="wrong")
            await videoroom.create_room(handle, 4321, admin_key=admin_key)
            assert await videoroom.room_exists(handle, 4321)
            listed = await handle.message({"request": "list"})
            rooms = {room["room"]: room for room in listed.data["list"]}
            assert rooms[1234]["audiocodec"] == "opus" and rooms[1234]["max_publishers"] >= 4
        finally:
            await session.destroy()
        assert await _healthcheck_status() == 0, f"the janus HEALTHCHECK failed:\n{_tail(log)}"
        text = _tail(log, 1_000_000)
        assert "Loading plugin 'libjanus_videoroom.so'" in text
        assert not re.search(r"Loading plugin 'libjanus_(?!videoroom)", text), "only VideoRoom is enabled"
        assert "HTTP webserver started (port 8088" in text
    finally:
        await _stop(proc)
    assert await _healthcheck_status() != 0, "the janus HEALTHCHECK passed with Janus stopped"


# --- the image's install steps ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_image_install_steps_run() -> None:
    """docker/check-image-steps.sh downloads from PyPI and npm, as `docker build` would. When this
    test process lives in the private network namespace (no route out), the script runs in the
    namespace pytest was started from."""
    argv = ["bash", str(DOCKER / "check-image-steps.sh")]
    outside = f"/proc/{os.getppid()}/ns/net"
    if os.readlink("/proc/self/ns/net") != os.readlink(outside):
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            pytest.fail("nsenter (util-linux) is needed to run check-image-steps.sh outside the namespace")
        argv = [nsenter, f"--net={outside}", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1400)
    report = "\n".join(
        line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("WARNING: Location")
    )
    assert done.returncode == 0, (
        f"docker/check-image-steps.sh failed (exit {done.returncode}):\n{report[-6000:]}"
    )
    assert "check-image-steps: all" in done.stdout, report[-3000:]
