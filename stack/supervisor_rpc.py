"""An XML-RPC extension of the stack's supervisord: add a program to a running group, remove a stopped one.

Why: a scale-out (:mod:`stack.scale`) adds replicas ``audit-service-<i>`` to the *running* group
``audit-service`` while its other members keep running. supervisord itself can only replace a whole
group (``reloadConfig`` + ``removeProcessGroup`` + ``addProcessGroup``, which is what ``supervisorctl
update`` does), and that would stop every replica of the group: a scale must not restart the replicas
it scales. supervisor_twiddler (by supervisor's maintainer) does exactly this, but its last release
is from 2014 and it is not kept for supervisor 4; the two calls it needs are a few lines of
supervisor's own API, here.

supervisord imports this module (``[rpcinterface:stack]`` in ``supervisord.conf``, written by
:func:`stack.supervisor.write_config`), so it imports nothing of the suite and nothing beyond supervisor.
A stack started before this existed lacks the namespace: :func:`stack.scale.scale` says to restart it.

    stack.addProgramToGroup(group, program, options)   options: the [program:x] keys, strings
    stack.removeProcessFromGroup(group, process)       only a process that is not running
"""

from __future__ import annotations

from typing import Any

from supervisor.options import UnhosedConfigParser
from supervisor.states import STOPPED_STATES, SupervisorStates
from supervisor.xmlrpc import Faults, RPCError

NAMESPACE = "stack"
FACTORY = "stack.supervisor_rpc:make_interface"


class StackRPCInterface:
    """The ``stack.*`` XML-RPC namespace of a stack's supervisord."""

    def __init__(self, supervisord: Any) -> None:
        self.supervisord = supervisord

    def _group(self, name: str) -> Any:
        if self.supervisord.get_state() == SupervisorStates.SHUTDOWN:
            raise RPCError(Faults.SHUTDOWN_STATE)
        group = self.supervisord.process_groups.get(name)
        if group is None:
            raise RPCError(Faults.BAD_NAME, f"group {name}")
        return group

    def addProgramToGroup(self, group_name: str, program_name: str, options: dict[str, str]) -> bool:
        """Add program ``program_name`` (its ``[program:x]`` keys in ``options``) to the running group
        ``group_name``; supervisord starts it if ``autostart`` says so. BAD_NAME if the name is taken.

        @param string group_name     name of a running process group
        @param string program_name   name of the new program
        @param struct options        its options, as in supervisord.conf
        @return boolean              true unless an error is raised
        """
        group = self._group(group_name)
        section = f"program:{program_name}"
        parser = UnhosedConfigParser()
        parser.expansions = dict(getattr(self.supervisord.options, "environ_expansions", {}) or {})
        try:
            parser.add_section(section)
            for key, value in dict(options).items():
                parser.set(section, str(key), str(value))
            configs = self.supervisord.options.processes_from_section(parser, section, group_name)
        except (TypeError, ValueError) as exc:
            raise RPCError(Faults.INCORRECT_PARAMETERS, str(exc)) from None
        for config in configs:
            if config.name in group.processes:
                raise RPCError(Faults.BAD_NAME, config.name)
        for config in configs:
            config.create_autochildlogs()
            group.config.process_configs.append(config)
            group.processes[config.name] = config.make_process(group)
        return True

    def removeProcessFromGroup(self, group_name: str, process_name: str) -> bool:
        """Remove process ``process_name``, which must be stopped, from group ``group_name``.

        @param string group_name     name of a running process group
        @param string process_name   name of a stopped process of it
        @return boolean              true unless an error is raised (BAD_NAME, STILL_RUNNING)
        """
        group = self._group(group_name)
        process = group.processes.get(process_name)
        if process is None:
            raise RPCError(Faults.BAD_NAME, process_name)
        if process.pid or process.get_state() not in STOPPED_STATES:
            raise RPCError(Faults.STILL_RUNNING, process_name)
        group.config.process_configs[:] = [c for c in group.config.process_configs if c.name != process_name]
        del group.processes[process_name]
        return True


def make_interface(supervisord: Any, **config: Any) -> StackRPCInterface:
    """The factory supervisord calls for ``[rpcinterface:stack]``."""
    return StackRPCInterface(supervisord)
