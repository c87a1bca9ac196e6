"""Prometheus, its scrape configuration generated from the other components' metrics, evaluating the alert rules.

The rules are ``deploy/local/alert-rules.yaml``: the ``local`` rendering of the alert catalogue
(``docs/alerts.yaml``, ``python -m probes.alerts render``), copied into the stack's configuration at
``up`` so that a checkout changing it does not change a running stack. They are evaluated every second
(the global ``evaluation_interval``), so an alert's ``for`` is what delays it, not the evaluation.

A ``--secure`` stack's Prometheus asks for a login on every request (``--web.config.file``, basic auth
of user ``resilience``; :func:`stack.security.prometheus_web_config`), its scrape of itself included.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from stack.components.base import Component
from stack.context import StackContext
from stack.errors import ComponentError
from stack.paths import REPO_ROOT
from stack.security import PROMETHEUS_SUITE_USER, prometheus_web_config, suite_prometheus_auth

#: The local rendering of the alert catalogue (kept in step with docs/alerts.yaml by tests/alerts).
ALERT_RULES = REPO_ROOT / "deploy" / "local" / "alert-rules.yaml"
ALERT_RULES_SPRING = REPO_ROOT / "deploy" / "local" / "alert-rules-spring.yaml"
"""The rules of a stack running the Spring service: the same alerts over its Micrometer names (the Python
rendering would read series it never exports; tests/spring/test_spring_queries.py scans every query)."""

FAST_SCRAPE = {
    # What recovery times are measured from (readiness, lag) is scraped twice a second, so an
    # RTO is resolved to about half a second; everything else once a second.
    group: {"scrape_interval": "500ms", "scrape_timeout": "400ms"} for group in ("audit-service", "exporters")
}


#: A Spring replica's /actuator/prometheus is many times the Python one's /metrics (every Micrometer
#: percentile-histogram bucket, JVM, Kafka client and Hikari series); a busy, freshly started JVM took more than
#: 900 ms to render it (a stack's first `up` failed on it), so it is scraped every 2 s with a 1.9 s timeout.
#: Readiness is not read from it (the pod-state exporter probes every 0.5 s), only rates over 30 s windows.
SLOW_SCRAPE = {"scrape_interval": "2s", "scrape_timeout": "1900ms"}


def _scrape_options(job: str, path: str | None) -> dict[str, str]:
    """Interval, timeout and (when not Prometheus' default ``/metrics``) the metrics path of one job."""
    if path and path != "/metrics":
        return {**SLOW_SCRAPE, "metrics_path": path}
    return dict(FAST_SCRAPE.get(job, {}))


def query_log(ctx: StackContext) -> Path:
    """Prometheus' query log of the stack: one JSON object per query it ran (``params.query``)."""
    return ctx.data_dir / "prometheus" / "query.log"


def config_file(ctx: StackContext) -> Path:
    """Prometheus' configuration file of the stack (generated at ``up``, rewritten by a scale)."""
    return ctx.conf_dir / "prometheus.yml"


def write_config(c: StackContext, scraped: list[Component]) -> Path:
    """Write ``prometheus.yml``: one scrape job per component group (``infra`` components one each) with
    the targets of ``scraped``. ``up`` calls it with every component; a scale (:mod:`stack.scale`) with
    the new set, then :func:`reload`. The rules file is not touched here (``up`` copies it)."""
    import yaml

    conf, rules = config_file(c), c.conf_dir / "alert-rules.yaml"
    jobs: dict[str, list[dict[str, object]]] = {}
    paths: dict[str, str] = {}
    for comp in scraped:
        if comp.metrics:
            labels = {"component": comp.name, **comp.metrics_labels}
            job = comp.group if comp.group != "infra" else comp.name
            jobs.setdefault(job, []).append({"targets": [comp.metrics], "labels": labels})
            paths[job] = comp.metrics_path
    jobs["prometheus"] = [{"targets": [f"127.0.0.1:{c.endpoints.port('prometheus')}"],
                           "labels": {"component": "prometheus"}}]
    web = prometheus_web_config(c)
    config = {
        # Every PromQL query Prometheus runs, one JSON line each: what a run read, for tests and debugging
        # (tests/spring/test_spring_queries.py proves from it that a Spring run reads no Python series).
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s",
                   "query_log_file": str(query_log(c)),
                   "external_labels": {"stack": f"local-{c.endpoints.port_base}"}},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": job, "static_configs": sc, **_scrape_options(job, paths.get(job)),
                            **({"basic_auth": {"username": PROMETHEUS_SUITE_USER, "password_file": str(web[1])}}
                               if web and job == "prometheus" else {})}
                           for job, sc in sorted(jobs.items())],
    }
    conf.parent.mkdir(parents=True, exist_ok=True)
    tmp = conf.with_name(f".{conf.name}.tmp")
    tmp.write_text("# Generated by the stack package from the component list; do not edit.\n"
                   + yaml.safe_dump(config, sort_keys=False))
    tmp.replace(conf)
    return conf


def reload(c: StackContext) -> None:
    """Make the running Prometheus read its configuration again (``POST /-/reload``, ``--web.enable-lifecycle``);
    :class:`ComponentError` when it refuses (a bad file: it keeps the old one and says why)."""
    url = f"{c.endpoints.prometheus_url}/-/reload"
    try:
        resp = requests.post(url, timeout=30, headers=suite_prometheus_auth(c).headers())
    except requests.RequestException as exc:
        raise ComponentError("prometheus", f"{url}: {exc}") from None
    if resp.status_code != 200:
        raise ComponentError("prometheus", f"{url}: HTTP {resp.status_code} {resp.text[:300]}")


def active_targets(c: StackContext, job: str) -> list[dict[str, object]]:
    """The labels and health of every active target of scrape job ``job`` (``/api/v1/targets``)."""
    resp = requests.get(f"{c.endpoints.prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=5,
                        headers=suite_prometheus_auth(c).headers())
    resp.raise_for_status()
    return [{**t["labels"], "health": t["health"]} for t in resp.json()["data"]["activeTargets"]
            if t["labels"].get("job") == job]


def prometheus(ctx: StackContext, scraped: list[Component]) -> Component:
    conf = config_file(ctx)
    rules = ctx.conf_dir / "alert-rules.yaml"
    data = ctx.data_dir / "prometheus"
    url = ctx.endpoints.prometheus_url

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        conf.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ALERT_RULES_SPRING if c.service == "spring" else ALERT_RULES, rules)
        write_config(c, scraped)

    def probe(c: StackContext) -> str:
        requests.get(f"{url}/-/ready", timeout=2, headers=suite_prometheus_auth(c).headers()).raise_for_status()
        return "ready"

    def health(c: StackContext) -> str:
        auth = suite_prometheus_auth(c).headers()
        requests.get(f"{url}/-/ready", timeout=2, headers=auth).raise_for_status()
        resp = requests.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=3, headers=auth)
        resp.raise_for_status()
        targets = resp.json()["data"]["activeTargets"]
        expected = _configured_targets(conf)
        down = sorted(f"{t['labels'].get('component', t['scrapeUrl'])}" for t in targets if t["health"] != "up")
        up = len(targets) - len(down)
        if len(targets) < expected or down:
            raise ComponentError("prometheus", f"{up}/{expected} targets up"
                                               + (f" (not up: {', '.join(down)})" if down else ""))
        groups = requests.get(f"{url}/api/v1/rules", params={"type": "alert"}, timeout=3,
                              headers=auth).json()["data"]["groups"]
        loaded = sum(len(g["rules"]) for g in groups)
        if not loaded:
            raise ComponentError("prometheus", f"no alert rules loaded (rule file {rules})")
        return f"ready, {up}/{expected} targets up, {loaded} alert rules"

    return Component(
        name="prometheus",
        command=[ctx.tools.prometheus, f"--config.file={conf}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{ctx.endpoints.port('prometheus')}",
                 "--storage.tsdb.retention.time=3d", "--web.enable-admin-api", "--web.enable-lifecycle",
                 "--log.level=warn", *([f"--web.config.file={ctx.conf_dir / 'prometheus-web.yml'}"] if ctx.secure
                                       else [])],
        ports=["prometheus"],
        prepare=prepare,
        probe=probe,
        health=health,
        # Every target up: a JVM's scrape may still time out a few times on a loaded machine.
        startup_timeout=90 if any(c.metrics and c.metrics_path != "/metrics" for c in scraped) else 30,
        endpoint=url,
    )


def _configured_targets(conf: Path) -> int:
    import yaml

    config = yaml.safe_load(conf.read_text())
    return sum(len(sc["targets"]) for job in config["scrape_configs"] for sc in job["static_configs"])
