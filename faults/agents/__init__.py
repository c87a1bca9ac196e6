"""Java agents the faults load into a running JVM, and the JDK tools that load them.

:file:`HeapHog.java` fills a JVM's heap to a share of its maximum and holds it (``faults.heap``). It is
compiled with the JDK's ``javac`` into a jar cached under ``$RESILIENCE_CACHE_DIR/agents/<hash of the
source>/`` (about 2 s the first time) and loaded with ``jcmd <pid> JVMTI.agent_load``: the attach mechanism
every HotSpot JVM has on by default, so the service needs no dependency, flag or endpoint of ours.
"""

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from stack.paths import cache_dir

HERE = Path(__file__).resolve().parent
HEAP_HOG_SOURCE = HERE / "HeapHog.java"
HEAP_HOG_CLASS = "sqlaudit.chaos.HeapHog"
JDK_TIMEOUT_S = 60.0


class AgentError(RuntimeError):
    """A JDK tool is missing, the agent did not build, or a JVM refused it (the message says which)."""


def jdk_tool(name: str) -> str:
    """Path of a JDK tool (``jcmd``, ``javac``, ``jar``); :class:`AgentError` naming the package if missing."""
    path = shutil.which(name)
    if path is None:
        raise AgentError(f"{name} not found on PATH: a JDK is needed to load agents into the service's JVM "
                         "(Debian: apt-get install openjdk-17-jdk-headless)")
    return path


def heap_hog_jar() -> Path:
    """The heap hog's jar, built on first use and cached by the hash of its source."""
    source = HEAP_HOG_SOURCE.read_bytes()
    dest = cache_dir() / "agents" / hashlib.sha256(source).hexdigest()[:16]
    jar = dest / "heap-hog.jar"
    if jar.exists():
        return jar
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as scratch:
        work = Path(scratch)
        classes = work / "classes"
        manifest = work / "MANIFEST.MF"
        manifest.write_text(f"Agent-Class: {HEAP_HOG_CLASS}\n")
        _run([jdk_tool("javac"), "--release", "17", "-d", str(classes), str(HEAP_HOG_SOURCE)], "compile HeapHog")
        built = work / "heap-hog.jar"
        _run([jdk_tool("jar"), "cfm", str(built), str(manifest), "-C", str(classes), "."], "pack heap-hog.jar")
        built.replace(jar)  # atomic: a concurrent build finds a whole jar or none
    return jar


def jcmd(pid: int, *command: str) -> str:
    """Run ``jcmd <pid> <command...>``; its output, or :class:`AgentError` with it (exit status and
    "return code" of an agent load both checked)."""
    out = _run([jdk_tool("jcmd"), str(pid), *command], f"jcmd {pid} {command[0]}")
    if "return code:" in out and "return code: 0" not in out:
        raise AgentError(f"jcmd {pid} {' '.join(command)}: the JVM refused: {out.strip()[-300:]}")
    return out


def _run(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=JDK_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise AgentError(f"{what}: exit {done.returncode}: {(done.stdout + done.stderr).strip()[-400:]}")
    return done.stdout
