"""ZooKeeper (ha profile): coordination of the replicated ClickHouse table."""

from __future__ import annotations

import os
import socket

from stack.components.base import Component, render
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError


def four_letter(port: int, word: str, timeout: float = 3.0) -> str:
    """A ZooKeeper four-letter command's answer (``ruok``, ``srvr``, ``mntr``)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def zookeeper(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "zookeeper" / "zoo.cfg"
    data = ctx.data_dir / "zookeeper"
    port = ctx.endpoints.port("zookeeper")

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        render("zookeeper.cfg.tmpl", conf, data=data, port=port)

    def probe(c: StackContext) -> str:
        if four_letter(port, "ruok") != "imok":
            raise ComponentError("zookeeper", "ruok not answered with imok")
        return "imok"

    def health(c: StackContext) -> str:
        srvr = dict(line.split(": ", 1) for line in four_letter(port, "srvr").splitlines() if ": " in line)
        if "Mode" not in srvr:
            raise ComponentError("zookeeper", f"srvr: no Mode in {srvr}")
        return f"mode {srvr['Mode']}, {srvr.get('Connections', '?')} connections, {srvr.get('Node count', '?')} znodes"

    heap = os.environ.get("RESILIENCE_ZOOKEEPER_HEAP", "128m")
    return Component(
        name="zookeeper",
        command=[ctx.tools.java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                 "-Dzookeeper.admin.enableServer=false", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                 "-cp", ctx.tools.zookeeper_classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 str(conf)],
        ports=["zookeeper"],
        prepare=prepare,
        probe=probe,
        health=health,
        startup_timeout=60,
        endpoint=f"zookeeper://{HOST}:{port}",
    )
