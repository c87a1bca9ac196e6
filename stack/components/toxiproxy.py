"""toxiproxy: one proxy per network edge of the audit service, so network faults bite."""

from __future__ import annotations

import json

import requests

from stack.components.base import Component
from stack.context import StackContext
from stack.errors import ComponentError


def toxiproxy(ctx: StackContext) -> Component:
    def prepare(c: StackContext) -> None:
        proxies = [
            {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{up}", "enabled": True}
            for name, (listen, up) in c.endpoints.proxies(c.profile, c.service).items()
        ]
        path = c.conf_dir / "toxiproxy.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(proxies, indent=2))

    def probe(c: StackContext) -> str:
        requests.get(f"{c.endpoints.toxiproxy_url}/version", timeout=2).raise_for_status()
        return "api answers"

    def health(c: StackContext) -> str:
        resp = requests.get(f"{c.endpoints.toxiproxy_url}/proxies", timeout=2)
        resp.raise_for_status()
        proxies = resp.json()
        want = set(c.endpoints.proxies(c.profile, c.service))
        missing = want - set(proxies)
        if missing:
            raise ComponentError("toxiproxy", f"proxies missing: {sorted(missing)}")
        disabled = sorted(n for n in want if not proxies[n]["enabled"])
        toxics = sorted(f"{n}:{t['name']}" for n in want for t in proxies[n].get("toxics", []))
        notes = []
        if disabled:
            notes.append(f"DISABLED {disabled}")
        if toxics:
            notes.append(f"toxics {toxics}")
        return f"{len(want)} proxies" + (f" ({'; '.join(notes)})" if notes else ", all enabled, no toxics")

    port = ctx.endpoints.port("toxiproxy_api")
    return Component(
        name="toxiproxy",
        command=[
            str(ctx.tools.toxiproxy),
            "-host", "127.0.0.1", "-port", str(port),
            "-config", str(ctx.conf_dir / "toxiproxy.json"),
            "-proxy-metrics", "-runtime-metrics",
        ],
        ports=["toxiproxy_api", *(f"proxy_{name}" for name in ctx.endpoints.proxies(ctx.profile, ctx.service))],
        prepare=prepare,
        probe=probe,
        health=health,
        startup_timeout=20,
        metrics=f"127.0.0.1:{port}",
        endpoint=ctx.endpoints.toxiproxy_url,
    )
