"""Command line: ``python -m grading assign | check | grade | release`` (the Makefile's targets)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import masters


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="build exercises/ and autograder/ from solutions/")
    a.add_argument("names", nargs="*", help="exercise names (default: all)")
    a.add_argument("--no-run-tests", action="store_true", help="do not check that the solutions pass")
    a.add_argument("--force", action="store_true", help="replace edited exercises (a copy is kept in "
                   "exercises/backups/)")
    c = sub.add_parser("check", help="run every master's tests on its own solution (trusted code only)")
    c.add_argument("names", nargs="*", help="exercise names (default: all)")
    g = sub.add_parser("grade", help="grade a folder of submissions into a CSV (sandboxed)")
    g.add_argument("submissions", type=Path)
    g.add_argument("--out", type=Path, default=Path("grades.csv"))
    g.add_argument("--timeout", type=float, default=float(os.environ.get("GRADE_TIMEOUT", 600)),
                   help="seconds per notebook (default GRADE_TIMEOUT or 600)")
    g.add_argument("--jobs", type=int, default=int(os.environ.get("GRADE_JOBS", 2)),
                   help="notebooks graded at once (default GRADE_JOBS or 2)")
    g.add_argument("--memory", type=int, default=None, help="bytes of memory per notebook "
                   "(default GRADE_MEMORY or 4 GiB)")
    g.add_argument("--logs", type=Path, default=None, help="folder for each notebook's (untrusted) output")
    r = sub.add_parser("release", help="write the students' edition (no solutions, no hidden tests)")
    r.add_argument("--out", type=Path, default=None, help="folder to write (default build/student-release)")
    r.add_argument("--replace", action="store_true", help="replace an existing folder whole")
    args = parser.parse_args(argv)
    if args.command == "assign":
        from .assign import assign

        assign(args.names or None, run_tests=not args.no_run_tests, force=args.force)
    elif args.command == "release":
        from .release import TARGET, build

        build(args.out or TARGET, replace=args.replace)
    elif args.command == "check":
        failed = 0
        for name in args.names or masters.exercise_names():
            master = masters.read_master(masters.SOLUTIONS / f"{name}.ipynb")
            cells = master.setup + [c for q in master.solutions.values() for c in q]
            results = masters.check(master, cells)
            got, total = masters.score(master, results)
            print(f"{name}: {got:g}/{total:g}")
            for case, why in results.items():
                if why:
                    failed += 1
                    print(f"  FAILED {case}: {why}")
        return 1 if failed else 0
    else:
        from .batch import grade

        grade(args.submissions, args.out, timeout=args.timeout, jobs=args.jobs, log_dir=args.logs,
              memory=args.memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
