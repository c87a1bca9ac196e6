"""Running the machine's tools (ip, mount, nsenter, ctr...) with a timeout and a clear error."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from cluster.errors import ClusterError

logger = logging.getLogger(__name__)


def run(cmd: Sequence[str], timeout: float = 60, check: bool = True, input: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; with ``check``, a non-zero exit raises :class:`ClusterError` quoting its stderr."""
    logger.debug("run: %s", " ".join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input, check=False)
    except FileNotFoundError:
        raise ClusterError(f"{cmd[0]}: not found") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(cmd)}` did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ClusterError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {detail}")
    return proc
