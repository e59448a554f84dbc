"""Interpreters as Kubernetes Jobs: one Job per meeting, rendered from docker/k8s's template
(kube_job.py), created, watched and deleted through the official `kubernetes` client (the
`kubernetes` extra), with in-cluster credentials or a kubeconfig, as kubectl would find them.

The client is synchronous: every call runs in a worker thread so the server's event loop never waits
on the API server. A Job outlives this server: a restarted (or another) web server finds the meeting's
Job by its name and follows it instead of starting a second interpreter; shutting the server down
leaves running interpreters in their meetings (they end with the meeting, or `activeDeadlineSeconds`).

The page learns the bot's room participant ids from its pod's log, read as the process launcher reads
a child's stderr; the bot's log itself stays with the cluster's log collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from translator_bot.web.childlog import LineSplitter
from translator_bot.web.kube_job import CONTAINER, job_failure, job_name, job_state, last_exit, render_job
from translator_bot.web.launcher import Interpreter, Launcher, LaunchError

log = logging.getLogger(__name__)

# The client's own type hints are partial (untyped functions, `str` for streamed responses).
client: Any = kubernetes.client
config: Any = kubernetes.config
_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_READ_CHUNK = 64 * 1024
_REQUEST_TIMEOUT_S = 10.0


class KubeApiError(LaunchError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_client(kubeconfig: str | None = None) -> tuple[Any, str]:
    """An ApiClient and the namespace to use: in-cluster credentials (the pod's service account) when
    running in a pod, else the kubeconfig's current context (KUBECONFIG or ~/.kube/config)."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        return client.ApiClient(configuration), namespace
    # Read at each call: the client reads KUBECONFIG once, when it is imported.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        api = config.new_client_from_config(config_file=kubeconfig)
    except (config.ConfigException, OSError) as exc:
        raise KubeApiError(
            f"no Kubernetes credentials: not in a pod, and no usable kubeconfig ({exc})"
        ) from None
    namespace = (active or {}).get("context", {}).get("namespace") or "default"
    return api, str(namespace)


@dataclass(kw_only=True)
class JobInterpreter(Interpreter):
    """One meeting's interpreter Job."""

    job: str
    namespace: str
    pod: str | None = None  # the pod whose log is being read

    def identity(self) -> dict[str, object]:
        return {"job": self.job, "namespace": self.namespace}


class KubernetesLauncher(Launcher):
    kind = "kubernetes"

    def __init__(
        self,
        api: Any,
        *,
        namespace: str,
        image: str,
        template: dict[str, Any],
        max_running: int = 8,
        poll_s: float = 2.0,
        stop_timeout_s: float = 30.0,
        on_exit: Callable[[Interpreter], None] | None = None,
    ) -> None:
        super().__init__(max_running=max_running, on_exit=on_exit, owner="kubernetes launcher")
        self._api = api
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self._image = image
        self._template = template
        self._poll_s = poll_s
        self._stop_timeout = stop_timeout_s

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API request in a worker thread -> its JSON body; KubeApiError (safe to show) if refused."""

        def call() -> Any:
            response = method(*args, _preload_content=False, _request_timeout=_REQUEST_TIMEOUT_S, **kwargs)
            return json.loads(response.data or b"null")

        try:
            return await asyncio.to_thread(call)
        except ApiException as exc:
            # Only the Status message: str(exc) would carry the response headers.
            detail = ""
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                detail = str(json.loads(exc.body or "{}").get("message", ""))[:300]
            raise KubeApiError(
                f"the Kubernetes API refused: {exc.status} {exc.reason}" + (f": {detail}" if detail else ""),
                exc.status,
            ) from None
        except (HTTPError, OSError) as exc:
            raise KubeApiError(f"cannot reach the Kubernetes API ({type(exc).__name__})") from None

    async def _read_job(self, name: str) -> dict[str, Any] | None:
        try:
            job: dict[str, Any] = await self._call(self._batch.read_namespaced_job, name, self.namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return job

    async def _delete_job(self, name: str) -> None:
        """Delete the Job and its pods (their containers get SIGTERM: the bot leaves the room)."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
        try:
            await self._call(self._batch.delete_namespaced_job, name, self.namespace, body=body)
        except KubeApiError as exc:
            if exc.status != 404:  # already gone
                raise

    def _interpreter(self, meeting_id: str, job: dict[str, Any]) -> JobInterpreter:
        return JobInterpreter(meeting_id=meeting_id, job=job["metadata"]["name"], namespace=self.namespace)

    async def _adopt(self, meeting_id: str) -> Interpreter | None:
        """The meeting's Job if it runs (started by another server, or this one before a restart); a
        finished one is deleted first, so the meeting can have a new interpreter."""
        name = job_name(meeting_id)
        job = await self._read_job(name)
        if job is None:
            return None
        if job_state(job) != "exited" and not job["metadata"].get("deletionTimestamp"):
            log.info("following the running interpreter Job %s of meeting %s", name, meeting_id)
            return self._interpreter(meeting_id, job)
        await self._delete_job(name)
        try:
            async with asyncio.timeout(self._stop_timeout):
                while await self._read_job(name) is not None:  # noqa: ASYNC110 (polling the API server)
                    await asyncio.sleep(self._poll_s)
        except TimeoutError:
            raise LaunchError(
                "the meeting's previous interpreter Job is still being deleted; try again"
            ) from None
        return None

    async def _launch(self, meeting_id: str) -> Interpreter:
        body = render_job(self._template, meeting_id, self._image)
        try:
            job = await self._call(self._batch.create_namespaced_job, self.namespace, body)
        except KubeApiError as exc:
            if exc.status == 409:
                raise LaunchError(
                    "an interpreter for this meeting was started at the same moment; reload"
                ) from None
            raise
        log.info(
            "created the interpreter Job %s/%s for meeting %s",
            self.namespace,
            job["metadata"]["name"],
            meeting_id,
        )
        return self._interpreter(meeting_id, job)

    async def _watch(self, bot: Interpreter) -> None:
        assert isinstance(bot, JobInterpreter)
        logs: asyncio.Task[None] | None = None
        unreadable = False
        try:
            while True:
                try:
                    job = await self._read_job(bot.job)
                except KubeApiError as exc:
                    if not unreadable:  # once per outage, not once per poll
                        log.warning("cannot read the interpreter Job %s: %s", bot.job, exc)
                    unreadable = True
                    await asyncio.sleep(self._poll_s)
                    continue
                if unreadable:
                    log.info("the interpreter Job %s is readable again", bot.job)
                    unreadable = False
                if job is None:
                    bot.finish(
                        None,
                        message="the interpreter was stopped (its Job was deleted)"
                        if bot.stopping
                        else "the interpreter's Job was deleted outside this server",
                    )
                    return
                state = job_state(job)
                if state == "exited":
                    await self._finish(bot, job)
                    return
                if state == "running" and bot.state == "starting":
                    bot.state = "running"
                if (logs is None or logs.done()) and (job.get("status", {}).get("active") or 0) > 0:
                    # The log is read again from its start when its stream ends early, which
                    # replays the same announcements in the same order.
                    pod = await self._running_pod(bot.job)
                    if pod is not None:
                        if pod != bot.pod:
                            bot.pod = pod
                            bot.participants.clear()  # a new pod is a new bot: new participant ids
                        logs = self._tasks.spawn(self._read_log(bot, pod), name=f"log of {pod}")
                await asyncio.sleep(self._poll_s)
        finally:
            if logs is not None:
                await self._tasks.cancel(logs)

    async def _finish(self, bot: JobInterpreter, job: dict[str, Any]) -> None:
        pods = await self._pods(bot.job)
        code, error = last_exit(pods)
        if error is not None:
            bot.error_line = error
        failure = job_failure(job)
        bot.finish(code, message=failure if code is None or (failure and code == 0) else None)

    async def _pods(self, job: str) -> list[dict[str, Any]]:
        try:
            listing = await self._call(
                self._core.list_namespaced_pod, self.namespace, label_selector=f"job-name={job}"
            )
        except KubeApiError as exc:
            log.warning("cannot list the pods of %s: %s", job, exc)
            return []
        return [pod for pod in listing.get("items") or [] if isinstance(pod, dict)]

    async def _running_pod(self, job: str) -> str | None:
        for pod in await self._pods(job):
            if pod.get("status", {}).get("phase") == "Running" and not pod["metadata"].get(
                "deletionTimestamp"
            ):
                return str(pod["metadata"]["name"])
        return None

    async def _read_log(self, bot: JobInterpreter, pod: str) -> None:
        """Follow the pod's log for the participant ids it announces (a bounded read, like a child's)."""
        try:
            response: Any = await asyncio.to_thread(
                self._core.read_namespaced_pod_log,
                pod,
                self.namespace,
                container=CONTAINER,
                follow=True,
                _preload_content=False,
            )
        except (ApiException, HTTPError, OSError) as exc:
            log.warning("cannot read the log of %s: %s", pod, getattr(exc, "status", type(exc).__name__))
            return
        lines = LineSplitter()
        try:
            while chunk := await asyncio.to_thread(response.read1, _READ_CHUNK):
                for line in lines.feed(chunk):
                    if line:
                        bot.read_line(line)
        except (HTTPError, OSError) as exc:
            log.info("the log of %s was cut (%s); reading it again", pod, type(exc).__name__)
        finally:
            # Unblocks the worker thread's read if we were cancelled in it.
            response.shutdown()
            response.release_conn()

    async def stop(self, bot: Interpreter) -> None:
        """Delete the Job (foreground: its pods go first; their bots get SIGTERM and leave the room)
        and wait until it is gone."""
        assert isinstance(bot, JobInterpreter)
        bot.stopping = True
        if bot.state == "exited":
            return
        await self._delete_job(bot.job)
        if bot.task is None:
            return
        try:
            async with asyncio.timeout(self._stop_timeout):
                await asyncio.shield(bot.task)
        except TimeoutError:
            log.warning("the interpreter Job %s is still being deleted", bot.job)

    async def _close_interpreters(self, bots: list[Interpreter]) -> None:
        """Jobs outlive this server: their interpreters stay in their meetings."""
        if running := [bot for bot in bots if bot.state != "exited"]:
            log.info("%d interpreter Job(s) keep running in namespace %s", len(running), self.namespace)

    async def aclose(self) -> None:
        await super().aclose()
        await asyncio.to_thread(self._api.close)
