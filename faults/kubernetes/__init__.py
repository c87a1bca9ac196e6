"""Kubernetes backends of the fault library (``configuration: {target: kubernetes}``).

``faults/kubernetes/<fault>.py`` holds the same functions, with the same signatures, as
``faults/local/<fault>.py``; :mod:`faults.engine` dispatches to them, so dry run, journal,
expiry timers, watchdog and ``resilience cleanup`` work as for the local target.

Shared pieces: :mod:`target.kubernetes` (the ``k8s_*`` keys and the safety guard), :mod:`.client`
(every API request, recorded for RBAC and dry run), :mod:`.selectors`, :mod:`.chaosmesh`, :mod:`._pods`,
:mod:`.expiry` (the ``expires-at`` annotation a partition policy and a hold carry). :mod:`.sweep` reverts what
expired without the journal (``python -m faults.cli sweep``).
Faults with no module here (``backup``, ``store_loss``) raise ``ActivityFailed`` before touching
anything. See docs/faults.md, "Kubernetes target".
"""

MANAGED_BY = "sql-audit-resilience"
"""Value of ``app.kubernetes.io/managed-by`` on every object the backends create."""
LABEL_PREFIX = "sql-audit-resilience"
