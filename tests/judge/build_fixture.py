"""Turn a real run directory into a small judge fixture: ``python tests/judge/build_fixture.py RUN_DIR OUT_DIR``.

Keeps what the offline judge reads (run.json, journal.json, the recorded Prometheus answers and
store read, the ledger, load/load.json) and one in ``--keep`` acknowledged events (chosen by a
hash of the event id, so the ledger and the store read keep the same ones), with the planned load
rate scaled by the same factor so the load check still compares like with like. The Prometheus
answers stay whole: they are what the verdict paths are about.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path


def _kept(event_id: str, keep: int) -> bool:
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % keep == 0


def build(run_dir: Path, out: Path, keep: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    run = json.loads((run_dir / "run.json").read_text())
    run["load"]["rate_eps"] = run["load"]["rate_eps"] / keep
    (out / "run.json").write_text(json.dumps(run, indent=1))
    for name in ("journal.json", "recorded/prometheus.json"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(json.loads((run_dir / name).read_text()), separators=(",", ":")))
    store = json.loads((run_dir / "recorded" / "store.json").read_text())
    store["stored"] = {k: v for k, v in store["stored"].items() if _kept(k, keep)}
    if store.get("violations", {}).get("status") == "measured":
        store["violations"]["checked"] = len(store["stored"])
    (out / "recorded" / "store.json").write_text(json.dumps(store, separators=(",", ":")))
    (out / "ledger").mkdir(exist_ok=True)
    for path in (run_dir / "ledger").iterdir():
        if path.name.startswith("acked-"):
            lines = [line for line in path.read_text().splitlines()
                     if line.strip() and _kept(json.loads(line)["event_id"], keep)]
            (out / "ledger" / path.name).write_text("\n".join(lines) + "\n")
        else:
            shutil.copy(path, out / "ledger" / path.name)
    (out / "load").mkdir(exist_ok=True)
    load = json.loads((run_dir / "load" / "load.json").read_text())
    (out / "load" / "load.json").write_text(json.dumps({k: load[k] for k in ("started_at", "spec") if k in load},
                                                       indent=1))
    _anonymise(out, run_dir)


def _anonymise(out: Path, run_dir: Path) -> None:
    """No path of the machine the run was made on stays in the fixture."""
    from target.settings import DEFAULT_STATE_DIR

    repo = str(Path(__file__).resolve().parents[2])
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for old, new in ((str(run_dir.resolve()), "<run-dir>"), (str(run_dir), "<run-dir>"), (repo, "<repo>"),
                             (str(DEFAULT_STATE_DIR), "<fault-state-dir>")):
                text = text.replace(old, new)
            path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--keep", type=int, default=10, help="keep one acknowledged event in KEEP (default 10)")
    args = ap.parse_args()
    build(args.run_dir, args.out, args.keep)


if __name__ == "__main__":
    main()
