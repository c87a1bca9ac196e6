"""Kubernetes backend of :mod:`faults.stale_api_key`: plain HTTP to the read API (:mod:`faults.stale_tokens`)."""

from faults.stale_tokens import send_stale_tokens, stop_stale_tokens

__all__ = ["send_stale_tokens", "stop_stale_tokens"]
