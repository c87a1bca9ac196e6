"""Local backends: faults on the embedded stack (``resilience up``).

One module per fault, with the same function names and signatures as the
public activity in ``faults/<fault>.py``. They act through supervisord's
XML-RPC API (the stack's client, :class:`stack.supervisor.Supervisor`, wrapped by
:mod:`faults.local.processes`), toxiproxy's HTTP API (:mod:`faults.local.proxies`)
and signals. Called with ``dry_run: true`` they read the system (the arguments arrive
checked by the public activity) and return ``{"would": ...}`` without changing it.
"""


from chaoslib.exceptions import ActivityFailed

from stack.core import LocalStack
from stack.errors import StackError
from target.settings import TargetSettings


def local_stack(settings: TargetSettings) -> LocalStack:
    """The :class:`LocalStack` that ``stack_port_base`` / ``stack_data_dir`` point at."""
    try:
        return LocalStack(port_base=settings.stack_port_base, data_dir=settings.stack_data_dir)
    except StackError as exc:
        raise ActivityFailed(f"local stack (port base {settings.stack_port_base}): {exc}") from exc
