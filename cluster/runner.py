"""The suite's runner inside the local cluster: ``cluster runner`` and ``cluster job`` (deploy/k8s/local/runner/).

:func:`deploy_runner` puts deploy/k8s/base on the cluster as a staging cluster gets it (ServiceAccount,
Role, the nightly CronJob, the gate Job's template, the report volume, the sweeper of expired faults, which runs),
with the runner image built here (deploy/k8s/local/images.sh) and the overlay's in-cluster target file.
:func:`start_job` then runs the CronJob's own pod template once with other arguments (as ``kubectl create job
--from=cronjob/...`` does, with the arguments replaced), :func:`wait_job` (or :func:`follow`, printing its logs)
returns the runner's exit code: the run happens in a pod, through the ServiceAccount's token, with its journal and
reports on the volume, which the machine reads at :func:`data_dir`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from cluster import proc
from cluster.configs import Paths
from cluster.errors import ClusterError
from cluster.images import Images
from cluster.install import Image, load_manifest
from cluster.netns import NODE_DIRS
from cluster.settings import REPO_ROOT, ClusterSettings
from cluster.system import (
    NAMESPACE,
    RUNNER_VOLUME,
    Progress,
    get_object,
    job_failure,
    kubectl,
    load_system_images,
    wait_until,
)

RUNNER_DIR = REPO_ROOT / "deploy" / "k8s" / "local" / "runner"
CRONJOB = "resilience-nightly"
GATE_JOB = "resilience-gate"
VOLUME = RUNNER_VOLUME
# The image name of deploy/k8s/base, replaced by the runner image built here.
IMAGE_NAME = "sql-audit-resilience"
# runAsUser of deploy/k8s/base's pods: the report volume's owner.
RUNNER_UID = 10001
JOB_LABEL = "sql-audit-resilience/job"
# The label deploy/k8s/base gives the runner's pods (runner: the CronJob's, gate: the gate Job's).
COMPONENT = "app.kubernetes.io/component"


def data_dir(settings: ClusterSettings) -> Path:
    """The report volume on the machine: the node's ``/var/lib/sql-audit-data/resilience-data``."""
    return settings.state_dir / "node" / NODE_DIRS["/var/lib"] / "sql-audit-data" / VOLUME


def runner_image(settings: ClusterSettings) -> Image:
    return load_system_images(settings, ("runner",))["runner"]


def render(settings: ClusterSettings, image: Image) -> list[dict[str, Any]]:
    """The overlay's objects with the runner image's reference (nothing applied)."""
    out = proc.run([load_manifest(settings).binary("kubectl"), "kustomize", str(RUNNER_DIR)], timeout=60).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        for container in _containers(doc):
            if str(container.get("image", "")).split(":", 1)[0] != IMAGE_NAME:
                raise ClusterError(f"{RUNNER_DIR}: {doc['kind']}/{doc['metadata']['name']} container "
                                   f"{container.get('name')}: image {container.get('image')!r} is not "
                                   f"{IMAGE_NAME!r} (only the runner image built here runs in this overlay)")
            container["image"] = image.ref
            container["imagePullPolicy"] = "Never"
    return docs


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def deploy_runner(settings: ClusterSettings, progress: Progress, timeout: float = 120) -> None:
    """Apply deploy/k8s/local/runner/ on the deployed system; waits until the report volume's claim is Bound."""
    manifest = load_manifest(settings)
    image = runner_image(settings)
    if get_object(settings, "statefulset", "sql-audit-service") is None:
        raise ClusterError(f"no system under test in namespace {NAMESPACE}: run `python -m cluster deploy` first")
    imported = Images(manifest, Paths(settings).containerd_sock, {"runner": image}).import_missing()
    progress("image", f"imported {', '.join(imported)}" if imported else "present")
    volume = data_dir(settings)
    for sub in ("", "faults", "reports"):
        (volume / sub).mkdir(parents=True, exist_ok=True)
        os.chown(volume / sub, RUNNER_UID, RUNNER_UID)
    _release_volume(settings)
    docs = render(settings, image)
    # A Job's template is immutable: the gate Job (created suspended) is made again with this image.
    proc.run([*kubectl(settings), "-n", NAMESPACE, "delete", "job", GATE_JOB, "--ignore-not-found", "--wait=true"],
             timeout=60)
    proc.run([*kubectl(settings), "apply", "--server-side", "--force-conflicts", "--field-manager",
              "sql-audit-runner", "-f", "-"], input=yaml.safe_dump_all(docs, sort_keys=False), timeout=120)
    progress("apply", f"{len(docs)} objects in namespace {NAMESPACE}, volume {volume}")

    def claim_pending() -> str | None:
        pvc = get_object(settings, "pvc", VOLUME)
        phase = (pvc or {}).get("status", {}).get("phase")
        return None if phase == "Bound" else f"claim {VOLUME}: {phase or 'not created'}"

    wait_until(f"pvc/{VOLUME}", claim_pending, time.monotonic() + timeout, progress)


def _release_volume(settings: ClusterSettings) -> None:
    """Make a volume left Released by an earlier claim (an undeploy and a deploy again) bindable: its claimRef
    still names the old claim's uid, so the new claim would wait forever."""
    res = proc.run([*kubectl(settings), "get", "pv", VOLUME, "-o", "json"], timeout=30, check=False)
    if res.returncode == 0 and json.loads(res.stdout).get("status", {}).get("phase") == "Released":
        proc.run([*kubectl(settings), "patch", "pv", VOLUME, "--type", "json", "-p",
                  '[{"op": "remove", "path": "/spec/claimRef/uid"}]'], timeout=30)


def job_body(cronjob: dict[str, Any], name: str, args: list[str]) -> dict[str, Any]:
    """A Job of the CronJob's own template with the runner container's arguments replaced by ``args``."""
    spec = json.loads(json.dumps(cronjob["spec"]["jobTemplate"]["spec"]))
    spec["template"]["spec"]["containers"][0]["args"] = list(args)
    spec["template"].setdefault("metadata", {}).setdefault("labels", {})[JOB_LABEL] = name
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {JOB_LABEL: name},
                         "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
            "spec": spec}


def start_job(settings: ClusterSettings, args: list[str], name: str | None = None) -> str:
    """Create a Job of the CronJob's template running ``resilience <args>``; returns its name."""
    cronjob = get_object(settings, "cronjob", CRONJOB)
    if cronjob is None:
        raise ClusterError(f"no CronJob {CRONJOB} in {NAMESPACE}: run `python -m cluster runner` first")
    busy = active_runs(settings)
    if busy:
        raise ClusterError(f"a run is going on in {NAMESPACE} (pods {', '.join(busy)}): a second one's cleanup "
                           "container would revert its faults (every open fault on the volume); wait for it, "
                           "or delete its Job")
    name = name or f"resilience-run-{time.strftime('%H%M%S')}"
    proc.run([*kubectl(settings), "create", "-f", "-"], input=json.dumps(job_body(cronjob, name, args)), timeout=30)
    return name


def _pods(settings: ClusterSettings, selector: str) -> list[dict[str, Any]]:
    res = proc.run([*kubectl(settings), "-n", NAMESPACE, "get", "pods", "-l", selector, "-o", "json"], timeout=30)
    return list(json.loads(res.stdout)["items"])


def active_runs(settings: ClusterSettings) -> list[str]:
    """The runner and gate pods of the namespace that are pending or running (and not just ended)."""
    return [p["metadata"]["name"] for p in _pods(settings, f"{COMPONENT} in (runner,gate)")
            if p.get("status", {}).get("phase") in ("Pending", "Running")
            and not p["metadata"].get("deletionTimestamp") and not _containers_ended(p)]


def _containers_ended(pod: dict[str, Any]) -> bool:
    """Every container of the pod has terminated (the kubelet reports it before the pod's phase follows)."""
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return bool(statuses) and all("terminated" in st.get("state", {}) for st in statuses)


def job_pod(settings: ClusterSettings, name: str) -> dict[str, Any] | None:
    pods = _pods(settings, f"{JOB_LABEL}={name}")
    return pods[0] if pods else None


def exit_code(pod: dict[str, Any] | None, container: str = "runner") -> int | None:
    """The container's (or init container's) exit code once it has ended, else ``None``."""
    status_of = (pod or {}).get("status", {})
    for status in [*status_of.get("initContainerStatuses", []), *status_of.get("containerStatuses", [])]:
        if status["name"] == container and "terminated" in status.get("state", {}):
            return int(status["state"]["terminated"]["exitCode"])
    return None


def wait_job(settings: ClusterSettings, name: str, progress: Progress, timeout: float = 900) -> int:
    """Wait for the Job's runner container to end; returns its exit code (the run's: 0 pass, 1 fail,
    2 inconclusive). A Job that failed without a runner exit code (the cleanup container failed, the pod was
    killed) raises :class:`ClusterError`."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        pod = job_pod(settings, name)
        code = exit_code(pod)
        if code is not None:
            return code
        if _failed(settings, name):
            raise ClusterError(f"job {name} failed before its runner ended{_why_cleanup(pod)} "
                               f"(kubectl -n {NAMESPACE} logs job/{name} --all-containers)")
        phase = (pod or {}).get("status", {}).get("phase", "no pod yet")
        if phase != last:
            progress(f"job/{name}", phase)
            last = phase
        if time.monotonic() > deadline:
            raise ClusterError(f"job {name}: runner not done in {timeout:.0f} s (phase {phase})")
        time.sleep(2)


def _runner_started(pod: dict[str, Any] | None) -> bool:
    return any(st["name"] == "runner" and ("running" in st.get("state", {}) or "terminated" in st.get("state", {}))
               for st in (pod or {}).get("status", {}).get("containerStatuses", []))


def follow(settings: ClusterSettings, name: str, progress: Progress, timeout: float = 3600) -> int:
    """:func:`wait_job`, printing the pod's logs as they come: the cleanup container's once it is done, then the
    runner's followed (``kubectl logs --follow``) until it ends. Returns the runner's exit code."""
    deadline = time.monotonic() + timeout
    while not _runner_started(job_pod(settings, name)):
        if _failed(settings, name):
            raise ClusterError(f"job {name} failed before its runner started{_why_cleanup(job_pod(settings, name))} "
                               f"(kubectl -n {NAMESPACE} logs job/{name} --all-containers)")
        if time.monotonic() > deadline:
            raise ClusterError(f"job {name}: runner not started in {timeout:.0f} s")
        time.sleep(1)
    for container, extra in (("cleanup", []), ("runner", ["--follow"])):
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([*kubectl(settings), "-n", NAMESPACE, "logs", f"job/{name}", "-c", container, "--prefix",
                            *extra], timeout=max(10.0, deadline - time.monotonic()), check=False)
    return wait_job(settings, name, progress, timeout=max(10.0, deadline - time.monotonic()))


def _why_cleanup(pod: dict[str, Any] | None) -> str:
    """Why the cleanup container stopped the Job, when it did (`faults.cli cleanup --dead-only`'s exit codes)."""
    code = exit_code(pod, "cleanup")
    if code == 3:
        return ": its cleanup container found another run at work on the volume (exit 3) and left it alone"
    return f": its cleanup container exited {code}" if code else ""


def _failed(settings: ClusterSettings, name: str) -> bool:
    return job_failure(get_object(settings, "job", name)) is not None


def logs(settings: ClusterSettings, name: str) -> str:
    """The Job's pod's logs, container by container (the cleanup init container first), of those that have
    started: ``kubectl logs --all-containers`` prints nothing but an error while one of them still waits (the
    runner after its cleanup container has ended and before the kubelet starts it)."""
    pod = job_pod(settings, name)
    if pod is None:
        return f"no pod of job/{name} yet\n"
    status = pod.get("status", {})
    out = []
    for st in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        if "waiting" in st.get("state", {}):
            out.append(f"[{st['name']}] not started: {st['state']['waiting'].get('reason', 'waiting')}\n")
            continue
        res = proc.run([*kubectl(settings), "-n", NAMESPACE, "logs", pod["metadata"]["name"], "-c", st["name"],
                        "--prefix"], timeout=60, check=False)
        out.append(res.stdout + res.stderr)
    return "".join(out)
