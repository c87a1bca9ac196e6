"""The kill switch of the kubernetes target on a real API server, as the suite's ServiceAccount (marker k8s)."""

from __future__ import annotations

from pathlib import Path

import kubernetes
import pytest

from faults import killswitch
from target.settings import resolve
from tests.k8s.conftest import NAMESPACE, Envtest, kustomize

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]


def test_halt_and_resume_patch_the_shipped_configmap_and_runs_are_refused_meanwhile(envtest: Envtest,
                                                                                  tmp_path: Path) -> None:
    [cm] = [d for d in kustomize(ROOT / "deploy" / "k8s" / "base")
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == killswitch.CONFIGMAP]
    assert "halt" not in (cm.get("data") or {}), "a re-apply must never clear a halt in force"
    core = kubernetes.client.CoreV1Api(envtest.admin)
    cm["metadata"]["namespace"] = NAMESPACE
    core.create_namespaced_config_map(NAMESPACE, cm)
    try:
        settings = resolve(envtest.configuration(tmp_path / "faults", "k8s-halt"))
        assert killswitch.status(settings) is None
        set_ = killswitch.halt(settings, "incident 42")
        assert set_.where == f"ConfigMap {NAMESPACE}/{killswitch.CONFIGMAP} key halt"
        seen = killswitch.status(settings)
        assert seen is not None and seen.reason == "incident 42"
        with pytest.raises(killswitch.HaltedError, match=r"halted by the kill switch .* incident 42"):
            killswitch.refuse_if_halted(settings, "resilience run")
        assert killswitch.resume(settings) is not None
        assert killswitch.status(settings) is None
        assert core.read_namespaced_config_map(killswitch.CONFIGMAP, NAMESPACE).data.get("halt") == ""
    finally:
        core.delete_namespaced_config_map(killswitch.CONFIGMAP, NAMESPACE)
