"""Deliberately careless actions for the residue test: they change the stack outside the fault library.

Nothing journals them and no rollback undoes them, as with a user's own extension that forgets its
clean-up: only the residue audit can see what they leave.
"""

from __future__ import annotations

import subprocess
from typing import Any

import requests

from stack.core import LocalStack
from target.settings import resolve

TOXIC = "careless-latency"


def _stack(configuration: dict[str, Any] | None) -> LocalStack:
    settings = resolve(configuration)
    return LocalStack(port_base=settings.stack_port_base, data_dir=settings.stack_data_dir)


def add_toxic(proxy: str, configuration: dict[str, Any] | None = None,
              secrets: dict[str, Any] | None = None) -> str:
    """Add a 20 ms latency toxic ``careless-latency`` to ``proxy`` through toxiproxy's API."""
    url = f"{_stack(configuration).endpoints.toxiproxy_url}/proxies/{proxy}/toxics"
    requests.post(url, json={"name": TOXIC, "type": "latency", "stream": "downstream", "toxicity": 1.0,
                             "attributes": {"latency": 20}}, timeout=5).raise_for_status()
    return TOXIC


def leave_process(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> int:
    """Start ``sleep 600`` in the stack's data directory, in a session of its own; returns its pid."""
    proc = subprocess.Popen(["sleep", "600"], cwd=str(_stack(configuration).data_dir), start_new_session=True)
    return proc.pid


def toxic_present(proxy: str, configuration: dict[str, Any] | None = None,
                  secrets: dict[str, Any] | None = None) -> bool:
    """Whether ``proxy`` carries the toxic :func:`add_toxic` adds (the experiment's proof that it acted)."""
    url = f"{_stack(configuration).endpoints.toxiproxy_url}/proxies/{proxy}"
    return any(t["name"] == TOXIC for t in requests.get(url, timeout=5).json()["toxics"])
