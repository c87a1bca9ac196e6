"""Kubernetes backend of :mod:`faults.poison`: the records go to the target's Kafka (:mod:`faults.poison_records`)."""

from faults.poison_records import inject_poison, stop_poison

__all__ = ["inject_poison", "stop_poison"]
