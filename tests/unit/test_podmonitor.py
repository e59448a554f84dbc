"""docker/k8s/monitoring's PodMonitor scrapes the pods the Job template makes: its selector matches
the template's pod labels, its port is the container's metrics port, and the meeting label it copies
is one the template sets. (A custom resource: kubernetes-validate has no schema for it.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parents[2] / "docker" / "k8s"


def load(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert isinstance(doc, dict)
    return doc


def test_the_podmonitor_selects_the_job_pods_metrics_port() -> None:
    monitor = load(K8S / "monitoring" / "translator-bot-podmonitor.yaml")
    job = load(K8S / "translator-bot-job.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    pod = job["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    annotations = pod["metadata"]["annotations"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == annotations["prometheus.io/path"] == "/metrics"
    assert ports[endpoint["port"]] == int(annotations["prometheus.io/port"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRANSLATOR_METRICS_PORT"] == str(ports[endpoint["port"]])
    # Prometheus names a pod label's meta label with every non-alphanumeric character as "_".
    meta = {"__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): k for k in labels}
    for relabel in endpoint["relabelings"]:
        assert all(source in meta for source in relabel["sourceLabels"]), relabel
