"""A fake Kubernetes API server at the HTTP level, for the Kubernetes launcher's tests: the real
`kubernetes` client talks to it through a kubeconfig that points at it.

It is no kinder than a real API server where the launcher could get things wrong: every Job it is
sent is validated against the API's own schema (kubernetes-validate, strict: unknown fields are
refused) and a bad one gets the real 422 `Invalid` Status; DeleteOptions bodies are validated too; a
second Job of the same name is a 409 `AlreadyExists`; requests without the kubeconfig's bearer token
are 401; a Job deleted without a propagation policy orphans its pods, as batch/v1 does. What the Job
controller and the kubelet would do (pods, their readiness, exit codes, log lines) the test drives.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import referencing
from aiohttp import web
from kubernetes_validate.utils import schema_contents

K8S_VERSION = "1.34.0"
TOKEN = "kube-bearer-token-0123456789"


def validate_delete_options(options: dict[str, Any]) -> None:
    """DeleteOptions against its schema (meta/v1: kubernetes_validate.validate() finds schemas by
    apiVersion and kind, and DeleteOptions is sent as v1 but described under meta)."""
    folder = f"kubernetes-json-schema/v{K8S_VERSION.rsplit('.', 1)[0]}.0-local-strict"
    schema = schema_contents(f"{folder}/deleteoptions-meta-v1.json", K8S_VERSION)
    definitions = schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    jsonschema.Draft202012Validator(schema, registry=registry).validate(options)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return web.json_response({**body, "message": message, "reason": reason, "code": code}, status=code)


@dataclass
class Pod:
    name: str
    job: str
    phase: str = "Pending"
    ready: bool = False
    exit_code: int | None = None
    message: str = ""  # the container's termination message
    log: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    orphaned: bool = False

    def to_json(self, namespace: str) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "translator-bot", "ready": self.ready, "restartCount": 0}
        if self.exit_code is not None:
            container["state"] = {
                "terminated": {"exitCode": self.exit_code, "message": self.message, "finishedAt": now()}
            }
        elif self.phase == "Running":
            container["state"] = {"running": {"startedAt": now()}}
        else:
            container["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "labels": {"job-name": self.job, "batch.kubernetes.io/job-name": self.job},
                "creationTimestamp": now(),
            },
            "status": {"phase": self.phase, "containerStatuses": [container]},
        }


class FakeKubeApi:
    def __init__(self, namespace: str = "meetings") -> None:
        self.namespace = namespace
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, Pod] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path), in order
        self.created: list[dict[str, Any]] = []  # every Job body a client sent, as sent
        self.deletes: list[dict[str, Any]] = []  # every DeleteOptions body
        self.invalid: list[str] = []  # why a request was refused as invalid
        self.unavailable = False  # fault control: every request gets 503, as during an API server restart
        self.foreground_delay_s = 0.2  # pods take this long to terminate on a foreground delete
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- server -----------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._auth])
        base = "/apis/batch/v1/namespaces/{ns}/jobs"
        app.router.add_post(base, self._create_job)
        app.router.add_get(base + "/{name}", self._read_job)
        app.router.add_delete(base + "/{name}", self._delete_job)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._list_pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._pod_log)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        for pod in self.pods.values():
            pod.log.put_nowait(None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def kubeconfig(self, path: Path, token: str = TOKEN) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "web", "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "web", "namespace": self.namespace},
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.unavailable:
            return status(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return status(401, "Unauthorized", "Unauthorized")
        if request.match_info.get("ns") != self.namespace:
            return status(403, "Forbidden", f"no access to namespace {request.match_info.get('ns')}")
        response: web.StreamResponse = await handler(request)
        return response

    # --- jobs -------------------------------------------------------------------------------------

    async def _create_job(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.created.append(copy.deepcopy(body))
        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            self.invalid.append(str(exc))
            return status(422, "Invalid", f"Job.batch is invalid: {exc}")
        name = body["metadata"]["name"]
        if len(name) > 63:
            self.invalid.append(f"name too long: {name}")
            return status(
                422,
                "Invalid",
                f"Job.batch {name!r} is invalid: metadata.name: must be no more than 63 characters",
            )
        if name in self.jobs:
            return status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        job = self.add_job(body)
        return web.json_response(job, status=201)

    def add_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Job as the API server stores it (also one "another server" created)."""
        job = copy.deepcopy(body)
        uid = str(uuid.uuid4())
        meta = job.setdefault("metadata", {})
        meta.update(
            {"namespace": self.namespace, "uid": uid, "creationTimestamp": now(), "resourceVersion": "1"}
        )
        job["status"] = {"active": 0, "ready": 0}
        self.jobs[meta["name"]] = job
        return job

    async def _read_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["name"])
        if job is None:
            return status(404, "NotFound", f'jobs.batch "{request.match_info["name"]}" not found')
        return web.json_response(job)

    async def _delete_job(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        options = await request.json() if request.can_read_body else {}
        self.deletes.append(options)
        if options:
            try:
                validate_delete_options(options)
            except jsonschema.ValidationError as exc:
                self.invalid.append(str(exc))
                return status(422, "Invalid", f"DeleteOptions is invalid: {exc}")
        job = self.jobs.get(name)
        if job is None:
            return status(404, "NotFound", f'jobs.batch "{name}" not found')
        policy = options.get("propagationPolicy")
        mine = [pod for pod in self.pods.values() if pod.job == name and not pod.orphaned]
        if policy == "Foreground":
            job["metadata"]["deletionTimestamp"] = now()
            job["metadata"]["finalizers"] = ["foregroundDeletion"]
            task = asyncio.create_task(self._finish_foreground(name, mine))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            del self.jobs[name]
            for pod in mine:
                if policy == "Background":
                    self._terminate(pod)
                else:
                    pod.orphaned = True  # batch/v1's default: the pods keep running
        return web.json_response(job)

    async def _finish_foreground(self, name: str, pods: list[Pod]) -> None:
        await asyncio.sleep(self.foreground_delay_s)
        for pod in pods:
            self._terminate(pod)
        self.jobs.pop(name, None)

    def _terminate(self, pod: Pod) -> None:
        """SIGTERM: the bot leaves the room and exits 0; the pod object goes."""
        pod.exit_code, pod.phase, pod.ready = 0, "Succeeded", False
        pod.log.put_nowait(None)
        self.pods.pop(pod.name, None)

    # --- what the Job controller and the kubelet do -----------------------------------------------

    def run_pod(self, job_name: str, *, ready: bool = False) -> Pod:
        job = self.jobs[job_name]
        pod = Pod(name=f"{job_name}-{uuid.uuid4().hex[:5]}", job=job_name, phase="Running", ready=ready)
        self.pods[pod.name] = pod
        job["status"].update({"active": 1, "ready": 1 if ready else 0, "startTime": now()})
        return pod

    def set_ready(self, pod: Pod, ready: bool = True) -> None:
        pod.ready = ready
        self.jobs[pod.job]["status"]["ready"] = 1 if ready else 0

    def say(self, pod: Pod, record: dict[str, Any] | str) -> None:
        line = record if isinstance(record, str) else json.dumps(record)
        pod.log.put_nowait(line.encode() + b"\n")

    def end_pod(self, pod: Pod, exit_code: int, message: str = "") -> None:
        pod.exit_code, pod.message, pod.ready = exit_code, message, False
        pod.phase = "Succeeded" if exit_code == 0 else "Failed"
        pod.log.put_nowait(None)
        status = self.jobs[pod.job]["status"]
        status.update({"active": 0, "ready": 0})
        status["succeeded" if exit_code == 0 else "failed"] = 1

    def finish_job(self, job_name: str, condition: str, reason: str = "") -> None:
        """The Job controller's verdict: Complete or Failed (with its reason)."""
        job_status = self.jobs[job_name]["status"]
        job_status["conditions"] = [
            {"type": condition, "status": "True", "reason": reason, "lastTransitionTime": now()}
        ]
        job_status.update({"active": 0, "ready": 0})
        if condition == "Complete":
            job_status["completionTime"] = now()

    # --- pods -------------------------------------------------------------------------------------

    async def _list_pods(self, request: web.Request) -> web.Response:
        selector = request.query.get("labelSelector", "")
        key, _, value = selector.partition("=")
        items = [
            pod.to_json(self.namespace)
            for pod in self.pods.values()
            if not selector or (key in ("job-name", "batch.kubernetes.io/job-name") and pod.job == value)
        ]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        pod = self.pods.get(request.match_info["name"])
        if pod is None:
            return status(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        if request.query.get("container") != "translator-bot":
            return status(400, "BadRequest", "container name must be given")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        follow = request.query.get("follow") == "true"
        while True:
            try:
                chunk = await asyncio.wait_for(pod.log.get(), None if follow else 0.01)
            except TimeoutError:
                break
            if chunk is None:
                break
            await response.write(chunk)
        await response.write_eof()
        return response
