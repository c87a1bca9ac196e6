"""Errors of the local cluster. Library code raises these; only the CLI picks exit codes."""

from __future__ import annotations

from pathlib import Path


class ClusterError(Exception):
    """Something about the cluster as a whole is wrong (bad setting, a step of ``up`` or ``down`` failed)."""


class MissingToolError(ClusterError):
    """A binary, image or Debian package the cluster needs is not installed (``cluster install`` fixes it)."""


class ComponentError(ClusterError):
    """One component did not start or did not become healthy; ``log_file`` holds the evidence."""

    def __init__(self, component: str, message: str, log_file: Path | None = None) -> None:
        self.component = component
        self.message = message
        self.log_file = log_file
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"{self.component}: {self.message}"
        if self.log_file is not None:
            text += f"\n  log: {self.log_file}"
            try:
                lines = self.log_file.read_text(errors="replace").splitlines()[-15:]
            except OSError:
                lines = []
            if lines:
                text += "\n  last lines:\n" + "\n".join("    " + line[:300] for line in lines)
        return text
