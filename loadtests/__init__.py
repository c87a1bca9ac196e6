"""SQL-event load with Locust into Kafka, with a ledger of acknowledged events (docs/load.md, docs/ledger.md).

``loadtests.runner`` starts and stops the load from Python, ``loadtests.ledger`` reads
what was acknowledged, ``loadtests/locustfile.py`` is the Locust entry point.
"""

__all__ = ["config", "generator", "ledger", "pacing", "runner", "shapes"]
