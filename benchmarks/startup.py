"""Start-up time of the command line and of ``import skacd``, in fresh processes.

Times, each in a fresh ``python`` started in the repository root (so the
checkout's ``skacd`` is imported), with one warm-up run and then ``--repeats``
runs (median and minimum):

* ``python -m skacd --help`` and ``python -m skacd fit --help``: the command
  line, which imports neither torch nor scikit-learn;
* ``python -c "import skacd"``: the package root, lazy (PEP 562);
* ``python -c "import skacd; skacd.AttributionSpace"``: the first public name,
  which imports torch and scikit-learn.

With ``--cold`` every run first evicts from the page cache (``posix_fadvise``
``DONTNEED``) the files that command imports: the Python sources, their
bytecode and extension modules, as listed by a first run. Pages mapped by a
running process (a shared library another program uses) stay cached, so this
is a cold *file* cache, not a cold machine. The last row evicts torch's and
scikit-learn's files, which other programs on the machine then read again.

It prints a table and writes JSON (``benchmarks/results/`` or ``$OUT``,
``--json`` to choose).

    python benchmarks/startup.py
    python benchmarks/startup.py --cold --repeats 3
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

COMMANDS = {
    "skacd --help": ["-m", "skacd", "--help"],
    "skacd fit --help": ["-m", "skacd", "fit", "--help"],
    "import skacd": ["-c", "import skacd"],
    "skacd.AttributionSpace": ["-c", "import skacd; skacd.AttributionSpace"],
}

# Prints every file the command's modules came from, after running it.
_LIST_FILES = """
import runpy, sys
args = {args!r}
if args[0] == "-m":
    sys.argv = [args[1]] + args[2:]
    try:
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
else:
    exec(args[1])
files = set()
for module in list(sys.modules.values()):
    for attr in ("__file__", "__cached__"):
        path = getattr(module, attr, None)
        if isinstance(path, str) and path:
            files.add(path)
print("\\n".join(sorted(files)), file=sys.__stderr__)
heavy = [m for m in ("torch", "sklearn", "open_clip") if m in sys.modules]
print("heavy:", heavy, file=sys.__stderr__)
"""


def _files_and_heavy(args):
    """The files ``args`` imports and the heavy modules among them."""
    run = subprocess.run(
        [sys.executable, "-c", _LIST_FILES.format(args=args)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    lines = run.stderr.splitlines()
    heavy = lines[-1].partition("heavy: ")[2]
    return [line for line in lines[:-1] if os.path.isfile(line)], heavy


def _evict(files):
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _time(args, evict=()):
    _evict(evict)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(repeats=5, cold=False):
    """Time every command of :data:`COMMANDS`; return one row per command."""
    rows = []
    for name, args in COMMANDS.items():
        files, heavy = _files_and_heavy(args)
        _time(args)  # warm-up
        seconds = [_time(args, files if cold else ()) for _ in range(repeats)]
        rows.append({
            "command": name,
            "argv": ["python", *args],
            "median_s": statistics.median(seconds),
            "min_s": min(seconds),
            "seconds": seconds,
            "heavy_modules_imported": heavy,
            "n_files_imported": len(files),
        })
    return rows


def render(rows, cold):
    cache = "cold file cache" if cold else "warm file cache"
    lines = [f"Start-up, wall seconds ({cache}):", "",
             f"{'command':<26} {'median':>7} {'min':>7}  heavy imports"]
    for row in rows:
        lines.append(f"{row['command']:<26} {row['median_s']:>7.3f} "
                     f"{row['min_s']:>7.3f}  {row['heavy_modules_imported']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true",
                        help="evict the imported files from the page cache before "
                             "every run")
    parser.add_argument("--json", help="output file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    rows = measure(args.repeats, args.cold)
    print(render(rows, args.cold))
    result = {
        "benchmark": "startup",
        "cold_file_cache": args.cold,
        "repeats": args.repeats,
        "rows": rows,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = args.json
    if path is None:
        directory = os.environ.get("OUT") or os.path.join(HERE, "results")
        os.makedirs(directory, exist_ok=True)
        stem = "startup-cold" if args.cold else "startup"
        path = os.path.join(directory, f"{stem}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
