"""The split-brain and ZooKeeper-loss faults without a stack: which proxies isolate a Patroni member, and the
refusals that come before anything is touched (bad argument, the kubernetes target)."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from faults import postgres_isolation, zookeeper_loss
from faults.local.postgres_isolation import all_proxies, cut_proxies
from stack.components import patroni
from stack.endpoints import Endpoints

PG1, PG2 = patroni.PG_MEMBERS


def test_the_leader_is_cut_from_etcd_and_from_the_other_member_both_ways() -> None:
    assert cut_proxies(PG1, "keep") == ["dcs_pg1", "peer_pg1", "peer_pg2", "api_pg1", "api_pg2"]
    assert cut_proxies(PG2, "cut") == ["dcs_pg2", "peer_pg1", "peer_pg2", "api_pg1", "api_pg2", "postgres_2"]


@pytest.mark.parametrize("member", patroni.PG_MEMBERS)
@pytest.mark.parametrize("clients", postgres_isolation.CLIENTS)
def test_the_other_member_keeps_its_dcs_so_it_can_be_promoted(member: patroni.PgMember, clients: str) -> None:
    other = next(m for m in patroni.PG_MEMBERS if m != member)
    cut = cut_proxies(member, clients)
    assert f"dcs_{other.name}" not in cut and f"dcs_{member.name}" in cut
    assert (other.port in cut) is False and (member.port in cut) == (clients == "cut")


def test_every_proxy_the_fault_names_exists_on_an_ha_stack_and_the_heal_covers_them() -> None:
    proxies = Endpoints(23000).proxies("ha")
    named = {p for m in patroni.PG_MEMBERS for c in postgres_isolation.CLIENTS for p in cut_proxies(m, c)}
    assert named <= set(proxies) and named <= set(all_proxies())
    assert set(Endpoints(23000).patroni_proxies()) <= set(proxies)
    assert not set(Endpoints(23000).patroni_proxies()) & set(Endpoints(23000).proxies("minimal"))


def test_patroni_reaches_etcd_and_advertises_itself_only_through_its_proxies() -> None:
    """Without ``use_proxies`` Patroni discovers etcd's own client URL and the DCS cut does not bite (seen live:
    the isolated leader kept its lock for 50 s)."""
    from pathlib import Path

    from stack.components.patroni import _patroni_config
    from stack.context import Secrets, StackContext, Tools

    eps = Endpoints(23000)
    tools = Tools(java="java", kafka_libs=Path("/x"), toxiproxy=Path("/x"), pg_bindir=Path("/x"),
                  clickhouse_server="x", prometheus="x")
    ctx = StackContext("ha", eps, Path("/nonexistent"), tools)
    ctx._secrets = Secrets("pw")
    conf = _patroni_config(ctx, PG1)
    assert conf["etcd3"] == {"hosts": f"127.0.0.1:{eps.port('proxy_dcs_pg1')}", "use_proxies": True}
    assert conf["restapi"]["connect_address"] == f"127.0.0.1:{eps.port('proxy_api_pg1')}"
    assert conf["postgresql"]["connect_address"] == f"127.0.0.1:{eps.port('proxy_peer_pg1')}"


@pytest.mark.parametrize("call", [
    lambda: postgres_isolation.isolate_postgres_leader(clients="both"),
    lambda: postgres_isolation.isolate_postgres_leader(synchronous="maybe"),
    lambda: postgres_isolation.isolate_postgres_leader(mode="drop"),
    lambda: postgres_isolation.isolate_postgres_leader(duration=-1),
    lambda: zookeeper_loss.lose_zookeeper(duration=0),
])
def test_bad_arguments_are_refused_naming_the_argument(call: object) -> None:
    with pytest.raises(ActivityFailed, match=r"clients|synchronous|mode|duration"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("call", "name"), [
    (lambda c: postgres_isolation.isolate_postgres_leader(configuration=c), "isolate_postgres_leader"),
    (lambda c: zookeeper_loss.lose_zookeeper(30, configuration=c), "lose_zookeeper"),
])
def test_the_kubernetes_target_refuses_with_the_reason(call: object, name: str) -> None:
    with pytest.raises(ActivityFailed, match=f"{name}: no kubernetes backend.*local ha profile"):
        call({"target": "kubernetes"})  # type: ignore[operator]
