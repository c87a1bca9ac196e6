"""Images in the node's containerd, imported from the install's OCI archives (no registry).

``ctr -n k8s.io images import`` puts an archive into the namespace the CRI plugin serves, so pods
that say ``imagePullPolicy: Never`` (the only policy that works here: nothing can be pulled) find
it. An archive's tag is a hash of its inputs, so "already imported" is a lookup by reference.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cluster import proc
from cluster.errors import ClusterError
from cluster.install import Image, Manifest

logger = logging.getLogger(__name__)

NAMESPACE = "k8s.io"


class Images:
    def __init__(self, manifest: Manifest, socket: Path, images: dict[str, Image] | None = None) -> None:
        """``images``: what to import (default: the cluster's own, ``manifest.images``)."""
        self.ctr = [str(manifest.tools["ctr"]), "--address", str(socket), "--namespace", NAMESPACE]
        self.manifest = manifest
        self.images = manifest.images if images is None else images

    def present(self) -> set[str]:
        """References of every image in the node's containerd."""
        out = proc.run([*self.ctr, "images", "list", "--quiet"], timeout=30).stdout
        return {line.strip() for line in out.splitlines() if line.strip()}

    def missing(self) -> list[Image]:
        have = self.present()
        return [img for img in self.images.values() if img.ref not in have]

    def import_missing(self) -> list[str]:
        """Import every image of the install that containerd lacks; returns the references imported."""
        done = []
        for img in self.missing():
            repo = img.ref.rsplit(":", 1)[0]
            logger.info("importing %s from %s", img.ref, img.archive)
            # The archive's index names the image by its tag alone; --base-name makes it <repo>:<tag>.
            proc.run([*self.ctr, "images", "import", "--base-name", repo, str(img.archive)], timeout=300)
            done.append(img.ref)
        still = [img.ref for img in self.missing()]
        if still:
            raise ClusterError(f"images not in containerd after import: {still}")
        return done
