"""``python -m sqlaudit``: run one replica of the SQL Audit Service."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from sqlaudit.config import ConfigError, Settings, load_checkers_config, load_settings

logger = logging.getLogger("sqlaudit")


def _parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {name:34} {desc}" for name, desc in Settings.env_names().items())
    parser = argparse.ArgumentParser(
        prog="python -m sqlaudit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="SQL Audit Service (reference implementation): consumes SQL-execution events from Kafka, "
                    "runs the checkers, stores every event in ClickHouse and violations in PostgreSQL, "
                    "dead-letters invalid events, and serves /metrics and /actuator/health/{liveness,readiness}. "
                    "SIGTERM: finish the batch, commit, leave the group.",
        epilog="Configuration comes from the environment (options below override it):\n" + env_help
               + "\n  SQLAUDIT_CHECK_<CHECKER>_<FIELD>   override one checker threshold, e.g. "
                 "SQLAUDIT_CHECK_SLOW_QUERY_THRESHOLD_MS=2000\n\nDocs: docs/events.md, docs/checkers.md, "
                 "docs/metrics.md.")
    parser.add_argument("--replica", help="replica name (SQLAUDIT_REPLICA)")
    parser.add_argument("--http-port", type=int, help="HTTP port for metrics and health (SQLAUDIT_HTTP_PORT)")
    parser.add_argument("--checkers-config", type=Path, help="checker thresholds YAML (SQLAUDIT_CHECKERS_CONFIG)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration (secrets redacted) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse options, load the configuration, run the replica; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(replica=args.replica, http_port=args.http_port, checkers_config=args.checkers_config)
        checkers = load_checkers_config(settings.checkers_config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps({"settings": settings.redacted(), "checkers": checkers.model_dump()}, indent=2))
        return 0
    logging.basicConfig(level=settings.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s [{settings.replica}] %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)

    from prometheus_client import disable_created_metrics

    from sqlaudit.httpserver import HealthServer
    from sqlaudit.service import AuditService

    disable_created_metrics()  # *_created series only add noise to every scrape
    service = AuditService(settings, checkers)
    configprops = {"settings": settings.redacted(), "checkers": checkers.model_dump()}
    server = HealthServer(settings.http_host, settings.http_port, service.health, configprops=configprops)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %s: finishing the batch, committing, leaving the group", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    logger.info("starting: %s", json.dumps(settings.redacted()))
    try:
        clean = service.run()
    finally:
        server.stop()
    logger.info("stopped (%s)", "clean" if clean else "batch left uncommitted")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
