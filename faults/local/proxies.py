"""toxiproxy's HTTP API (every request with a timeout): one proxy per edge of the audit service.

Each edge of the audit service (:mod:`target.topology`: ``kafka``, ``postgres``,
``clickhouse``) has a proxy the service reaches it through, so a toxic there hits the service
and not the load generator or the probes. Toxics this library adds are named
``chaos-<fault>-<stream>``.

An edge has one proxy per member behind it: ``postgres`` on the minimal profile,
``postgres`` and ``postgres_2`` on the ``ha`` one (``kafka``, ``kafka_2``, ``kafka_3``...).
A fault on an edge hits every member's proxy (:func:`target.topology.edge_members`), so a
partition from PostgreSQL cannot be dodged by failing over to the other member; name one
proxy (``postgres_2``) to hit only it.
"""

from faults.local import local_stack
from faults.toxiproxy import ToxiproxyAPI, conflicting
from target.settings import TargetSettings

__all__ = ["Toxiproxy", "conflicting"]


class Toxiproxy(ToxiproxyAPI):
    """Client of the local stack's toxiproxy."""

    def __init__(self, settings: TargetSettings) -> None:
        super().__init__(local_stack(settings).endpoints.toxiproxy_url)
