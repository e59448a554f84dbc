"""The Kubernetes Job of one meeting's interpreter, as plain data: rendered from the same template as
docker/k8s/launch-job.sh renders (translator-bot-job.yaml, with ${MEETING_ID}, ${MEETING_NAME} and
${IMAGE}), and read back into the page's states. No I/O but reading the template file.

Secrets never reach the Job's arguments: the template takes the bot's settings from a ConfigMap and
its keys from a Secret (envFrom); rendering only puts the meeting id and the image in.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from translator_bot.web.childlog import CLI_ERROR
from translator_bot.web.launcher import State

CONTAINER = "translator-bot"  # the template's container, whose exit code the Job's end is read from
_PREFIX = "translator-bot-"  # the template's metadata.name is translator-bot-${MEETING_NAME}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9./:@_-]*")  # launch-job.sh's check


class TemplateError(ValueError):
    """The Job template cannot be used; the message says why."""


def default_template_path() -> Path:
    """docker/k8s/translator-bot-job.yaml of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "docker" / "k8s" / "translator-bot-job.yaml"


def meeting_name(meeting_id: str) -> str:
    """The meeting id made part of a DNS label, exactly as launch-job.sh does it: lowercase, `_` and `.`
    become `-`; an id that had to change (or is long) gets 8 hex digits of its SHA-256, so "Room_A"
    and "room-a" stay two Jobs."""
    name = meeting_id.lower().replace("_", "-").replace(".", "-")
    if name != meeting_id or len(name) > 39:
        digest = hashlib.sha256(meeting_id.encode()).hexdigest()[:8]
        name = name[:39]
        name = name.removesuffix("-")
        name = f"{name}-{digest}"
    return name


def job_name(meeting_id: str) -> str:
    return _PREFIX + meeting_name(meeting_id)


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TemplateError(f"cannot read the Job template {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"the Job template {path} is not YAML: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != "Job":
        raise TemplateError(f"{path} is not a Kubernetes Job")
    if document.get("metadata", {}).get("name") != _PREFIX + "${MEETING_NAME}":
        raise TemplateError(f"{path}: metadata.name must be {_PREFIX}${{MEETING_NAME}} (one Job per meeting)")
    if not any(c.get("name") == CONTAINER for c in _containers(document)):
        raise TemplateError(f"{path} has no container named {CONTAINER}")
    return document


def render_job(template: dict[str, Any], meeting_id: str, image: str) -> dict[str, Any]:
    """The meeting's Job. Placeholders are filled in the parsed document, value by value, so nothing
    substituted can change the YAML's structure."""
    if not _IMAGE.fullmatch(image):
        raise TemplateError("the interpreter image is not an image reference")
    values = {"MEETING_ID": meeting_id, "MEETING_NAME": meeting_name(meeting_id), "IMAGE": image}

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), node)
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        return node

    job: dict[str, Any] = fill(copy.deepcopy(template))
    if (left := _PLACEHOLDER.search(yaml.safe_dump(job))) is not None:
        raise TemplateError(f"the Job template has a placeholder nothing fills: {left.group(0)}")
    job.setdefault("metadata", {}).setdefault("labels", {})["app.kubernetes.io/managed-by"] = (
        "translator-bot-web"
    )
    for container in _containers(job):
        if container.get("name") == CONTAINER:
            # The bot's last log lines become the container's termination message when it fails, so
            # the page can say why (the CLI's one-line error) without reading the pod's log.
            container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return job


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return [c for c in containers if isinstance(c, dict)]


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def job_state(job: dict[str, Any]) -> State:
    """starting: no pod ready yet (scheduling, pulling, joining, or between retries); running: a pod is
    ready (its /readyz: in the room); exited: the Job completed or failed for good."""
    if _condition(job, "Complete") is not None or _condition(job, "Failed") is not None:
        return "exited"
    status = job.get("status", {})
    if (status.get("active") or 0) > 0 and (status.get("ready") or 0) > 0:
        return "running"
    return "starting"


def job_failure(job: dict[str, Any]) -> str | None:
    """Why a failed Job failed, when the pods cannot say (a deadline, a deleted pod)."""
    failed = _condition(job, "Failed")
    if failed is None:
        return None
    reason = str(failed.get("reason") or "Failed")
    if reason == "DeadlineExceeded":
        return "the interpreter's Job ran longer than its activeDeadlineSeconds and was stopped"
    return f"the interpreter's Job failed ({reason})"


def last_exit(pods: list[dict[str, Any]]) -> tuple[int | None, str | None]:
    """The exit code of the newest pod's bot container and the CLI's error line from its termination
    message (the end of its log), if it has ended."""
    ended: list[tuple[str, int, str]] = []
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") == CONTAINER and terminated is not None:
                when = str(
                    terminated.get("finishedAt") or pod.get("metadata", {}).get("creationTimestamp") or ""
                )
                ended.append((when, int(terminated.get("exitCode", 0)), str(terminated.get("message") or "")))
    if not ended:
        return None, None
    _, code, message = max(ended)
    errors = [line.removeprefix(CLI_ERROR) for line in message.splitlines() if line.startswith(CLI_ERROR)]
    return code, errors[-1] if errors else None
