"""etcd (ha profile): Patroni's distributed configuration store."""

from __future__ import annotations

import requests

from stack.components.base import Component
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError

HTTP_TIMEOUT = (2.0, 5.0)


def etcd(ctx: StackContext) -> Component:
    data = ctx.data_dir / "etcd"
    client = f"http://{HOST}:{ctx.endpoints.port('etcd_client')}"
    peer = f"http://{HOST}:{ctx.endpoints.port('etcd_peer')}"

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)

    def health(c: StackContext) -> str:
        resp = requests.get(f"{client}/health", timeout=HTTP_TIMEOUT)
        if resp.status_code != 200 or resp.json().get("health") != "true":
            raise ComponentError("etcd", f"{client}/health: HTTP {resp.status_code} {resp.text.strip()[:200]}")
        version = requests.get(f"{client}/version", timeout=HTTP_TIMEOUT).json().get("etcdserver")
        return f"healthy, version {version}"

    return Component(
        name="etcd",
        command=[ctx.tools.etcd, "--name", "etcd0", "--data-dir", str(data),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new",
                 "--initial-cluster-token", f"sqlaudit-{ctx.endpoints.port_base}",
                 "--quota-backend-bytes", str(256 * 1024 * 1024), "--log-level", "warn"],
        ports=["etcd_client", "etcd_peer"],
        prepare=prepare,
        probe=health,
        health=health,
        startup_timeout=30,
        metrics=f"{HOST}:{ctx.endpoints.port('etcd_client')}",
        endpoint=client,
    )
