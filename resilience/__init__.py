"""sql-audit-resilience: chaos experiments that prove the SQL Audit Service's SLOs under failure."""

__version__ = "0.1.0"
