"""Print the mutation score of the last ``mutmut run`` (used by ``make mutate``).

Reads mutmut's per-file results (``mutants/<path>.meta``) of the files listed in ``[tool.mutmut]
only_mutate`` and prints one line per file, the surviving mutants, and as its last line
``killed=K/N``: N counts every mutant that ran (a mutant that no test reaches counts as not
killed); K those a test failed on, timeouts included (an endless loop caught by the time limit).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, 24, -24, 152, 255, 36}      # test failure, pytest internal error, timeouts (SIGXCPU, 36)
NOT_RUN = {None, 34}                          # not checked (interrupted run), skipped


def main() -> int:
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    killed = total = 0
    survivors = []
    for name in files:
        meta = ROOT / "mutants" / f"{name}.meta"
        if not meta.exists():
            print(f"{name}: no results (mutants/{name}.meta missing)", file=sys.stderr)
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        ran = {k: v for k, v in codes.items() if v not in NOT_RUN}
        k = sum(v in KILLED for v in ran.values())
        kinds = Counter("killed" if v in KILLED else "survived" if v == 0 else "no tests" if v in (5, 33)
                        else f"exit {v}" for v in ran.values())
        print(f"{name}: killed {k}/{len(ran)} ({dict(sorted(kinds.items()))}; "
              f"{len(codes) - len(ran)} not run)")
        survivors += sorted(m for m, v in ran.items() if v not in KILLED)
        killed, total = killed + k, total + len(ran)
    for m in survivors:
        print(f"    not killed: {m}")
    print(f"killed={killed}/{total}")
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
