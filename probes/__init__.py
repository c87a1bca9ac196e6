"""SLO probes of the SQL audit service resilience suite.

``probes.activities`` holds the Chaos Toolkit probes (measurements judged by an
experiment's tolerances); the modules beside it do the measuring: ``prom`` (Prometheus),
``recovery`` (RTO arithmetic), ``dataloss`` (ledger against the stores, RPO), ``evaluate``
(SLO verdicts of a run), ``slo`` (the catalogue in ``docs/slo.yaml``) and ``endpoints`` (where
the probes read, from the settings model). Discovery: :mod:`chaossqlaudit`.
"""
