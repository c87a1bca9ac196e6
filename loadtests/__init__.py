"""SQL-event load with Locust into Kafka, with a ledger of acknowledged events (docs/load.md, docs/ledger.md).

``loadtests.locust_process`` starts and stops the Locust process from Python,
``loadtests.activities`` are the Chaos Toolkit actions that do it from an experiment,
``loadtests.ledger`` reads what was acknowledged, ``loadtests/locustfile.py`` is the Locust entry point.
"""

__all__ = ["activities", "config", "generator", "ledger", "locust_process", "pacing", "shapes"]
