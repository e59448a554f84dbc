"""The interpreter Job as kube_job.py renders it from docker/k8s's template: the same Job name as
launch-job.sh, valid against the Kubernetes API schemas, no secret anywhere in it; and a Job's
status read back into the page's states."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from translator_bot.web.kube_job import (
    TemplateError,
    default_template_path,
    job_failure,
    job_name,
    job_state,
    last_exit,
    load_template,
    meeting_name,
    render_job,
)

K8S = Path(__file__).resolve().parents[2] / "docker" / "k8s"
IDS = ["1234", "Room_A.2", "room-a", "a" * 64, "team.sync_2", "x-" * 20 + "y"]


def launch_job_print(meeting_id: str) -> dict[str, Any]:
    done = subprocess.run(
        ["bash", str(K8S / "launch-job.sh"), "--print", meeting_id],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "IMAGE": "registry.example.org/translator-bot:1.2.3"},
    )
    job: dict[str, Any] = yaml.safe_load(done.stdout)
    return job


def test_the_default_template_is_docker_k8s_job() -> None:
    assert default_template_path() == K8S / "translator-bot-job.yaml"


@pytest.mark.parametrize("meeting_id", IDS)
def test_the_job_is_launch_job_shs_job(meeting_id: str) -> None:
    """Rendered from the same template with the same names: one Job per meeting, whichever started it."""
    ours = render_job(
        load_template(default_template_path()), meeting_id, "registry.example.org/translator-bot:1.2.3"
    )
    theirs = launch_job_print(meeting_id)
    assert ours["metadata"]["name"] == theirs["metadata"]["name"] == job_name(meeting_id)
    assert job_name(meeting_id) == "translator-bot-" + meeting_name(meeting_id)
    # The same Job but for what the server adds: its own label and the termination message policy.
    ours["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    ours["spec"]["template"]["spec"]["containers"][0].pop("terminationMessagePolicy")
    assert ours == theirs


@pytest.mark.parametrize("version", ["1.31.0", "1.34.0"])
@pytest.mark.parametrize("meeting_id", IDS)
def test_the_job_is_valid_and_carries_no_secret(meeting_id: str, version: str) -> None:
    job = render_job(load_template(default_template_path()), meeting_id, "translator-bot:1.2.3")
    kubernetes_validate.validate(job, version, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["join", "--", meeting_id]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # Keys come from the Secret by reference; nothing in the Job carries a value for them.
    assert {"secretRef": {"name": "translator-bot-secrets"}} in container["envFrom"]
    names = {env["name"] for env in container.get("env", [])}
    assert not names & {"OPENAI_API_KEY", "TRANSLATOR_TURN_PASSWORD", "AZURE_OPENAI_API_KEY"}
    assert "${" not in yaml.safe_dump(job)


def test_odd_templates_and_images_are_refused(tmp_path: Path) -> None:
    template = load_template(default_template_path())
    with pytest.raises(TemplateError, match="image"):
        render_job(template, "1", "x; rm -rf /")
    bad = tmp_path / "job.yaml"
    bad.write_text("kind: Deployment\n")
    with pytest.raises(TemplateError, match="not a Kubernetes Job"):
        load_template(bad)
    bad.write_text(yaml.safe_dump({**template, "metadata": {"name": "fixed"}}))
    with pytest.raises(TemplateError, match="one Job per meeting"):
        load_template(bad)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")
    odd = {**template, "metadata": {**template["metadata"], "annotations": {"x": "${TEAM}"}}}
    with pytest.raises(TemplateError, match=r"\$\{TEAM\}"):
        render_job(odd, "1", "img:1")


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "translator-bot-1"}, "status": status}


def test_job_status_becomes_the_pages_states() -> None:
    assert job_state(job()) == "starting"
    assert job_state(job(active=1, ready=0)) == "starting"  # pulling, joining
    assert job_state(job(active=1, ready=1)) == "running"  # its /readyz: in the room
    assert job_state(job(active=0, failed=1)) == "starting"  # between retries (backoffLimit)
    done = [{"type": "Complete", "status": "True"}]
    assert job_state(job(succeeded=1, conditions=done)) == "exited"
    failed = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    assert job_state(job(conditions=failed)) == "exited"
    assert "activeDeadlineSeconds" in str(job_failure(job(conditions=failed)))
    assert job_state(job(active=1, ready=1, conditions=[{"type": "Failed", "status": "False"}])) == "running"


def test_the_newest_pods_exit_and_cli_error_are_read() -> None:
    def pod(code: int, message: str, finished: str) -> dict[str, Any]:
        terminated = {"exitCode": code, "message": message, "finishedAt": finished}
        return {
            "status": {"containerStatuses": [{"name": "translator-bot", "state": {"terminated": terminated}}]}
        }

    log_tail = '{"msg": "x"}\ntranslator-bot: Janus refused: no such room 7\n'
    pods = [pod(1, "", "2026-01-01T10:00:00Z"), pod(3, log_tail, "2026-01-01T10:05:00Z")]
    assert last_exit(pods) == (3, "Janus refused: no such room 7")
    assert last_exit([]) == (None, None)
