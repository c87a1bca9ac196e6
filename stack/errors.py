"""Errors of the local stack. Library code raises these; only the CLI picks exit codes."""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """Something about the stack as a whole is wrong (bad argument, not running, port taken)."""


class SupervisorError(StackError):
    """supervisord did not answer, refused a call (``fault_code``: its XML-RPC fault), or a program
    did not reach a state in time."""

    def __init__(self, message: str, fault_code: int | None = None) -> None:
        super().__init__(message)
        self.fault_code = fault_code


class ProcessGone(StackError):
    """A process to signal does not exist (any more)."""


class MissingToolError(StackError):
    """A binary or jar the stack needs is not installed."""


class ComponentError(StackError):
    """One component failed: it did not start, did not become healthy, or a check failed.

    ``log_file`` and ``log_tail`` point the user at the evidence.
    """

    def __init__(self, component: str, message: str, log_file: Path | None = None,
                 log_tail: str | None = None) -> None:
        self.component = component
        self.message = message
        self.log_file = log_file
        self.log_tail = log_tail
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"{self.component}: {self.message}"
        if self.log_file:
            text += f"\n  log: {self.log_file}"
        if self.log_tail:
            tail = "\n".join("    " + line for line in self.log_tail.rstrip().splitlines())
            text += f"\n  last lines:\n{tail}"
        return text
