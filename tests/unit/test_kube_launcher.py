"""The Kubernetes launcher with the real `kubernetes` client, against a fake API server at the HTTP
level (tests/unit/kube_api.py) reached through a kubeconfig: start, status, stop, a meeting whose
Job already runs, and the web server's API on top. No real cluster is involved: pods, readiness and
exit codes are what the test says the Job controller and the kubelet did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.kube_api import TOKEN, FakeKubeApi
from translator_bot.settings import load_settings
from translator_bot.web.app import make_launcher
from translator_bot.web.config import WebConfig, language_choices
from translator_bot.web.kube_job import default_template_path, job_name, load_template, render_job
from translator_bot.web.kube_launcher import JobInterpreter, KubernetesLauncher, api_client
from translator_bot.web.launcher import Interpreter, LaunchError
from translator_bot.web.server import create_app

IMAGE = "registry.example.org/translator-bot:1.2.3"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeApi]:
    fake = FakeKubeApi()
    await fake.start()
    yield fake
    await fake.close()


def make(kube: FakeKubeApi, tmp_path: Path, **kwargs: Any) -> KubernetesLauncher:
    api, namespace = api_client(str(kube.kubeconfig(tmp_path / "kubeconfig")))
    assert namespace == kube.namespace  # from the kubeconfig's context
    options: dict[str, Any] = {"poll_s": 0.05, "stop_timeout_s": 5.0, **kwargs}
    template = load_template(default_template_path())
    return KubernetesLauncher(api, namespace=namespace, image=IMAGE, template=template, **options)


@pytest.fixture
async def launcher(kube: FakeKubeApi, tmp_path: Path) -> AsyncIterator[KubernetesLauncher]:
    bots = make(kube, tmp_path)
    yield bots
    await bots.aclose()


async def until(check: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polled as the launcher polls the API server
            await asyncio.sleep(0.02)


def room_record(message: str) -> dict[str, str]:
    return {"ts": "x", "level": "info", "logger": "translator_bot.room.session", "msg": message}


async def test_start_creates_one_valid_job_and_follows_it_to_running(
    kube: FakeKubeApi, launcher: KubernetesLauncher
) -> None:
    bot, started = await launcher.start("01234")
    assert started and isinstance(bot, JobInterpreter)
    assert kube.invalid == [] and len(kube.created) == 1  # the fake validated it against the schema
    sent = kube.created[0]
    assert sent["metadata"]["name"] == bot.job == job_name("1234") == "translator-bot-1234"
    container = sent["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["join", "--", "1234"] and container["image"] == IMAGE
    assert TOKEN not in str(sent)
    assert bot.status()["state"] == "starting" and bot.status()["job"] == "translator-bot-1234"

    pod = kube.run_pod(bot.job)  # scheduled and started, not ready: still joining
    kube.say(pod, room_record("joined meeting 1234 as participant 777"))
    kube.say(pod, room_record("publishing 'Interpreter -> Ann (en)' as participant 888"))
    kube.say(
        pod,
        {
            "ts": "x",
            "level": "info",
            "logger": "translator_bot.interpreter",
            "msg": "publishing 'M' as participant 666",
        },
    )
    await until(lambda: bot.participants == {"777", "888"}, "participants from the pod's log")
    kube.set_ready(pod)
    await until(lambda: bot.state == "running", "running once the pod is ready")
    status = bot.status()
    assert (
        status["participants"] == ["777", "888"] and status["message"] == "the interpreter is in the meeting"
    )

    again, started = await launcher.start("1234")
    assert again is bot and not started and len(kube.created) == 1


async def test_a_completed_job_is_a_clean_leave(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    ended: list[Interpreter] = []
    launcher.on_exit = ended.append
    bot, _ = await launcher.start("1234")
    pod = kube.run_pod(job_name("1234"), ready=True)
    await until(lambda: bot.state == "running", "running")
    kube.end_pod(pod, 0)
    kube.finish_job(job_name("1234"), "Complete")
    await until(lambda: bot.state == "exited", "exited")
    assert bot.exit_code == 0 and not bot.failed and ended == [bot]
    assert bot.status()["message"] == "the interpreter left the meeting"


async def test_a_failed_job_says_why_with_secrets_scrubbed(
    kube: FakeKubeApi, launcher: KubernetesLauncher
) -> None:
    bot, _ = await launcher.start("1234")
    pod = kube.run_pod(job_name("1234"))
    tail = '{"msg": "refusing"}\ntranslator-bot: the provider refused key sk-abcdefghijklmnop1234\n'
    kube.end_pod(pod, 4, tail)
    kube.finish_job(job_name("1234"), "Failed", "PodFailurePolicy")
    await until(lambda: bot.state == "exited", "exited")
    message = str(bot.status()["message"])
    assert bot.exit_code == 4 and bot.failed
    assert "model provider refused" in message and "sk-***" in message and "abcdefghijklmnop" not in message


async def test_a_job_past_its_deadline_is_explained(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    bot, _ = await launcher.start("1234")
    kube.run_pod(job_name("1234"), ready=True)
    kube.finish_job(job_name("1234"), "Failed", "DeadlineExceeded")
    await until(lambda: bot.state == "exited", "exited")
    assert "activeDeadlineSeconds" in str(bot.status()["message"]) and bot.failed


async def test_stop_deletes_the_job_and_its_pods(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    bot, _ = await launcher.start("1234")
    pod = kube.run_pod(job_name("1234"), ready=True)
    await until(lambda: bot.state == "running", "running")
    await launcher.stop(bot)
    # Foreground propagation: the pods (whose bots get SIGTERM) go before the Job; batch/v1's default
    # would orphan them, leaving the bot in the meeting.
    assert kube.deletes == [{"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}]
    assert kube.invalid == [] and kube.jobs == {} and pod.name not in kube.pods and not pod.orphaned
    assert bot.state == "exited" and not bot.failed
    assert bot.status()["message"] == "the interpreter was stopped (its Job was deleted)"


async def test_a_meeting_whose_job_already_runs_is_followed_not_started_twice(
    kube: FakeKubeApi, launcher: KubernetesLauncher
) -> None:
    # Started by another web server (or this one before it restarted).
    existing = kube.add_job(render_job(load_template(default_template_path()), "1234", IMAGE))
    kube.run_pod(existing["metadata"]["name"], ready=True)
    bot, started = await launcher.start("1234")
    assert not started and kube.created == []
    await until(lambda: bot.state == "running", "running")

    # A finished Job of the meeting (kept for its ttlSecondsAfterFinished) is replaced.
    done = kube.add_job(render_job(load_template(default_template_path()), "77", IMAGE))
    kube.finish_job(done["metadata"]["name"], "Complete")
    _, started = await launcher.start("77")
    assert started and [job["metadata"]["name"] for job in kube.created] == ["translator-bot-77"]
    assert kube.deletes[-1]["propagationPolicy"] == "Foreground"
    assert kube.jobs["translator-bot-77"]["metadata"]["uid"] != done["metadata"]["uid"]


async def test_an_api_server_outage_while_watching_is_waited_out(
    kube: FakeKubeApi, launcher: KubernetesLauncher, caplog: pytest.LogCaptureFixture
) -> None:
    bot, _ = await launcher.start("1234")
    kube.unavailable = True
    polls = len(kube.requests)
    await until(lambda: len(kube.requests) > polls + 5, "several polls during the outage")
    assert bot.state == "starting"  # an unreadable Job is no ended interpreter
    warned = [r for r in caplog.records if "cannot read the interpreter Job" in r.getMessage()]
    assert len(warned) == 1, "one warning per outage, not one per poll"
    kube.unavailable = False
    kube.run_pod(job_name("1234"), ready=True)
    await until(lambda: bot.state == "running", "running after the outage")


async def test_a_job_deleted_by_someone_else_ends_the_interpreter(
    kube: FakeKubeApi, launcher: KubernetesLauncher
) -> None:
    bot, _ = await launcher.start("1234")
    del kube.jobs[job_name("1234")]  # kubectl delete job, or its TTL
    await until(lambda: bot.state == "exited", "exited")
    assert "deleted outside this server" in str(bot.status()["message"])


async def test_the_running_limit_and_a_refusing_api_are_launch_errors(
    kube: FakeKubeApi, tmp_path: Path
) -> None:
    bots = make(kube, tmp_path, max_running=1)
    try:
        await bots.start("1")
        with pytest.raises(LaunchError, match="already running"):
            await bots.start("2")
    finally:
        await bots.aclose()
    # Jobs outlive the server: shutting it down deletes nothing.
    assert kube.deletes == [] and list(kube.jobs) == ["translator-bot-1"]

    api, _ = api_client(str(kube.kubeconfig(tmp_path / "wrong", token="not-the-token")))
    template = load_template(default_template_path())
    refused = KubernetesLauncher(api, namespace=kube.namespace, image=IMAGE, template=template)
    try:
        with pytest.raises(LaunchError, match="refused: 401") as caught:
            await refused.start("3")
        assert "not-the-token" not in str(caught.value)
    finally:
        await refused.aclose()


async def test_an_unreachable_api_server_is_a_launch_error(kube: FakeKubeApi, tmp_path: Path) -> None:
    bots = make(kube, tmp_path)
    await kube.close()
    try:
        with pytest.raises(LaunchError, match="cannot reach the Kubernetes API"):
            await bots.start("1")
    finally:
        await bots.aclose()


# --- through the web server ------------------------------------------------------------------------


@pytest.fixture
async def client(launcher: KubernetesLauncher, tmp_path: Path) -> AsyncIterator[Client]:
    config = WebConfig(janus_url="ws://127.0.0.1:8188/", languages=tuple(language_choices(["en", "es"])))
    async with TestClient(TestServer(create_app(config, launcher, vendor_dir=tmp_path))) as test_client:
        yield test_client


def page_headers(client: Client) -> dict[str, str]:
    return {"Content-Type": "application/json", "Origin": f"http://{client.server.host}:{client.server.port}"}


async def test_the_page_starts_watches_and_stops_a_job(kube: FakeKubeApi, client: Client) -> None:
    url = "/api/meetings/1234/interpreter"
    reply = await client.post(url, data="{}", headers=page_headers(client))
    assert reply.status == 202
    body = await reply.json()
    assert body["state"] == "starting" and body["job"] == "translator-bot-1234" and body["started"] is True
    pod = kube.run_pod("translator-bot-1234", ready=True)
    kube.say(pod, room_record("joined meeting 1234 as participant 777"))
    async with asyncio.timeout(5):
        body = await (await client.get(url)).json()
        while body["state"] != "running" or not body["participants"]:
            await asyncio.sleep(0.05)  # the page polls the same way
            body = await (await client.get(url)).json()
    assert body["participants"] == ["777"] and body["display_name"] == "Interpreter"
    listing = await (await client.get("/api/interpreters")).json()
    assert listing["launcher"] == "kubernetes" and [b["job"] for b in listing["interpreters"]] == [
        "translator-bot-1234"
    ]

    assert (await client.delete(url)).status == 403  # not from the page
    stopped = await client.delete(url, data="{}", headers=page_headers(client))
    assert stopped.status == 200
    assert (await stopped.json())["state"] == "exited" and kube.jobs == {}
    assert (await (await client.get(url)).json())[
        "message"
    ] == "the interpreter was stopped (its Job was deleted)"


async def test_web_picks_the_kubernetes_launcher_from_its_settings(
    kube: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("TRANSLATOR_WEB_LAUNCHER", "kubernetes")
    monkeypatch.setenv("TRANSLATOR_WEB_K8S_IMAGE", IMAGE)
    settings = load_settings({})
    args = type("Args", (), {"max_interpreters": 3})()
    bots = make_launcher(args, settings, ())
    try:
        assert isinstance(bots, KubernetesLauncher) and bots.namespace == kube.namespace
        assert bots.max_running == 3
        await bots.start("5")
        assert kube.created[0]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    finally:
        await bots.aclose()
