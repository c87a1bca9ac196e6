"""What deploy/k8s/local/install.sh installed: binaries, image archives and Debian tools.

The script writes a manifest (``local-cluster.json`` in the cache); :func:`load_manifest`
reads and checks it, and :func:`run_install` runs the script (cached: seconds when done).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import ClusterError, MissingToolError
from cluster.settings import INSTALL_SCRIPT, ClusterSettings

logger = logging.getLogger(__name__)

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
            "kubectl", "kube-router")
IMAGES = ("pause", "coredns", "base")
# Images of add-ons the system runs (local-addons.json: a manifest an older checkout's install.sh never rewrites).
ADDON_IMAGES = ("kube-state-metrics",)
# Debian's tools the cluster runs (package in parentheses is what install.sh installs).
DEBIAN_TOOLS = {"containerd": "containerd", "ctr": "containerd", "runc": "runc", "iptables": "iptables",
                "ipset": "ipset", "conntrack": "conntrack", "ip": "iproute2", "nsenter": "util-linux",
                "unshare": "util-linux", "mount": "mount", "socat": "socat"}
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
INSTALL_HINT = "run `python -m cluster install` (deploy/k8s/local/install.sh)"


@dataclass(frozen=True)
class Image:
    name: str
    ref: str
    archive: Path


@dataclass(frozen=True)
class Manifest:
    """Absolute paths of everything the cluster runs."""

    kubernetes_version: str
    binaries: dict[str, Path]
    images: dict[str, Image]
    tools: dict[str, Path]

    def binary(self, name: str) -> str:
        return str(self.binaries[name])


def load_manifest(settings: ClusterSettings) -> Manifest:
    """The install manifest, with every file it names checked; raises :class:`MissingToolError`."""
    path = settings.manifest_path
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingToolError(f"no install manifest at {path}: {INSTALL_HINT}") from None
    except (OSError, ValueError) as exc:
        raise MissingToolError(f"{path}: unreadable ({exc}): {INSTALL_HINT}") from None
    try:
        binaries = {name: Path(raw["binaries"][name]) for name in BINARIES}
        images = {name: Image(name, str(raw["images"][name]["ref"]), Path(raw["images"][name]["archive"]))
                  for name in IMAGES}
        version = str(raw["kubernetes_version"])
    except (KeyError, TypeError) as exc:
        raise MissingToolError(f"{path}: no entry {exc} (an older install?): {INSTALL_HINT}") from None
    addons = settings.addons_manifest_path
    try:
        raw = json.loads(addons.read_text())
        images |= {name: Image(name, str(raw["images"][name]["ref"]), Path(raw["images"][name]["archive"]))
                   for name in ADDON_IMAGES}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MissingToolError(f"{addons}: no add-on images ({exc!r}; an older install?): {INSTALL_HINT}") from None
    missing = [f"{name} ({p})" for name, p in binaries.items() if not os.access(p, os.X_OK)]
    missing += [f"image {i.name} ({i.archive})" for i in images.values() if not i.archive.is_file()]
    tools: dict[str, Path] = {}
    for tool, package in DEBIAN_TOOLS.items():
        found = shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if found is None:
            missing.append(f"{tool} (Debian package {package})")
        else:
            tools[tool] = Path(found)
    missing += [f"CNI plugin {CNI_BIN_DIR / p} (containernetworking-plugins)" for p in CNI_PLUGINS
                if not (CNI_BIN_DIR / p).exists()]
    if missing:
        raise MissingToolError(f"not installed: {', '.join(missing)}: {INSTALL_HINT}")
    return Manifest(kubernetes_version=version, binaries=binaries, images=images, tools=tools)


def run_install(settings: ClusterSettings, force: bool = False) -> None:
    """Run deploy/k8s/local/install.sh (its output goes to the terminal); raises on failure.

    The script's exit code 3 (Go missing) becomes :class:`MissingToolError`.
    """
    if shutil.which("bash") is None:
        raise MissingToolError("bash is not installed")
    env = {**os.environ, "RESILIENCE_K8S_CACHE": str(settings.cache_dir)}
    cmd = ["bash", str(INSTALL_SCRIPT), *(["--force"] if force else [])]
    logger.info("running %s", " ".join(cmd))
    rc = subprocess.run(cmd, env=env, check=False).returncode
    if rc == 3:
        raise MissingToolError(f"{INSTALL_SCRIPT}: a tool is missing (see its output)")
    if rc != 0:
        raise ClusterError(f"{INSTALL_SCRIPT} failed with exit code {rc} (see its output)")
