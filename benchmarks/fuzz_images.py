"""Fuzz skacd's image reader: mutated images through the featurizer, one at a time.

Seed images of every accepted format (JPEG, PNG, BMP, WEBP, GIF, TIFF; 8- and
16-bit, palette, transparency, CMYK, EXIF) are made here, mutated with a
plain mutator (bit flips, interesting bytes, overwritten header integers,
truncation, inserted, repeated and deleted ranges, splices of two seeds) and
fed one file at a time to a worker process that featurizes them with the tiny
random open_clip model (``skacd-tiny-ViT``, no weights needed) and
``on_error="skip"``. The parent kills and restarts the worker when one file
runs past ``--time-limit`` seconds (a hang) or past ``--rss-limit-mb`` of
resident memory.

Each file ends as exactly one of

- ``scored``: featurized, and Pillow warned about nothing while it was read;
- ``named error``: an ``ImageLoadError`` naming the file;
- ``silent``: scored although Pillow warned while reading it (must be 0);
- ``crash``: any other exception, or the worker died (must be 0);
- ``hang``: over the time limit (must be 0);
- ``rss``: over the memory limit (must be 0).

The summary line counts them, with the peak RSS of the worker. Exit status 1
if any of the last four is not 0; with ``--save-failures DIR`` those files are
kept there to reproduce.

Usage (from the repository root; CI runs a one-minute budget as the slow test
``tests/test_fuzz.py``)::

    OMP_NUM_THREADS=1 python benchmarks/fuzz_images.py --files 10000 --seed 0 \\
        --save-failures /tmp/fuzz-failures

    OMP_NUM_THREADS=1 python benchmarks/fuzz_images.py --budget 60   # seconds
"""

import argparse
import io
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from PIL import Image

INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x40]
INTERESTING_INTS = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 9400, 65500]


def seed_images():
    """``{name: bytes}``: small images of every format and mode skacd accepts."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    rgb[::4] = 255
    image = Image.fromarray(rgb)
    seeds = {}

    def save(name, im, fmt, **kwargs):
        buffer = io.BytesIO()
        im.save(buffer, format=fmt, **kwargs)
        seeds[name] = buffer.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated
    exif[0x010E] = "a description"
    save("rgb.jpg", image, "JPEG", quality=90, exif=exif.tobytes())
    save("progressive.jpg", image, "JPEG", progressive=True)
    save("cmyk.jpg", image.convert("CMYK"), "JPEG")
    save("gray.jpg", image.convert("L"), "JPEG")
    save("rgb.png", image, "PNG")
    save("rgba.png", image.convert("RGBA"), "PNG")
    palette = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette.png", palette, "PNG", transparency=3)
    gray16 = rng.integers(0, 65536, (24, 32)).astype(np.uint16)
    save("gray16.png", Image.fromarray(gray16), "PNG")
    save("rgb.bmp", image, "BMP")
    save("palette.bmp", palette, "BMP")
    save("rgb.webp", image, "WEBP", quality=80)
    save("lossless.webp", image.convert("RGBA"), "WEBP", lossless=True)
    frames = [palette, image.rotate(90).convert("P")]
    save("anim.gif", frames[0], "GIF", save_all=True, append_images=frames[1:])
    save("rgb.tif", image, "TIFF")
    save("lzw.tif", image, "TIFF", compression="tiff_lzw")
    gray16 = rng.integers(0, 65536, (24, 32)).astype(np.uint16)
    save("gray16.tif", Image.fromarray(gray16), "TIFF")
    return seeds


def _write_int(data, rng):
    if len(data) < 4:
        return
    size = rng.choice([2, 4])
    at = rng.randrange(0, len(data) - size + 1)
    value = rng.choice(INTERESTING_INTS) & (2 ** (8 * size) - 1)
    data[at : at + size] = value.to_bytes(size, rng.choice(["little", "big"]))


def mutate(data, rng, others):
    """A mutated copy of ``data`` (1 to 8 stacked mutations)."""
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 8])):
        op = rng.randrange(9)
        n = len(data)
        if n == 0:
            data = bytearray(rng.choice(others))
            continue
        if op == 0:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(n)
                data[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # interesting bytes
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(n)] = rng.choice(INTERESTING)
        elif op == 2:  # header integers (sizes, counts, offsets)
            head = bytearray(data[: min(n, 256)])
            _write_int(head, rng)
            data[: len(head)] = head
        elif op == 3:  # integers anywhere
            _write_int(data, rng)
        elif op == 4:  # truncation
            data = data[: rng.randrange(max(1, n))]
        elif op == 5:  # delete a range
            i = rng.randrange(n)
            del data[i : i + rng.randint(1, 64)]
        elif op == 6:  # insert random bytes
            i = rng.randrange(n + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif op == 7:  # repeat a range
            i = rng.randrange(n)
            chunk = data[i : i + rng.randint(1, 256)]
            data[i:i] = chunk * rng.randint(1, 16)
        else:  # splice with another seed
            other = rng.choice(others)
            cut = rng.randrange(n)
            data = data[:cut] + other[rng.randrange(len(other)) :]
    return bytes(data)


# -- the worker: one file per request ---------------------------------------


def worker():
    """Read paths on stdin; answer one JSON line per path on stdout."""
    from skacd import CLIPFeaturizer

    featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
                                num_workers=0, on_error="skip", batch_size=1)
    featurizer.fit(None)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the answer pipe
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        path = line.rstrip("\n")
        answer = {"path": path}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = featurizer.featurize([path])
            pillow = [str(w.message) for w in caught
                      if f"{os.sep}PIL{os.sep}" in (w.filename or "")]
            if result.errors:
                error = result.errors[0]
                answer["outcome"] = "named error" if error.source == path else "crash"
                answer["detail"] = str(error)[:300]
            elif pillow:
                answer["outcome"] = "silent"
                answer["detail"] = "; ".join(pillow)[:300]
            elif not np.isfinite(result.features).all():
                answer["outcome"] = "silent"
                answer["detail"] = "non-finite features"
            else:
                answer["outcome"] = "scored"
        except Exception as exc:  # noqa: BLE001 - every other exception is a crash
            answer["outcome"] = "crash"
            answer["detail"] = f"{type(exc).__name__}: {exc}"[:300]
        out.write(json.dumps(answer) + "\n")
        out.flush()


# -- the parent ------------------------------------------------------------------


def _status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # MB
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0


class Worker:
    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env, bufsize=1,
        )
        self.peak_mb = 0.0
        # Start-up (importing torch, building the model) is not a file's time.
        ready, _, _ = select.select([self.process.stdout], [], [], 300)
        if not ready or self.process.stdout.readline() != "ready\n":
            self.kill()
            raise RuntimeError("the fuzz worker did not start (run it with --worker)")

    def ask(self, path, time_limit, rss_limit_mb):
        """``(outcome, detail)`` for ``path``; kills the worker on a hang."""
        try:
            self.process.stdin.write(path + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return "crash", "the worker died"
        deadline = time.monotonic() + time_limit
        out = self.process.stdout
        while True:
            ready, _, _ = select.select([out], [], [], 0.02)
            rss = _status(self.process.pid, "VmRSS")
            self.peak_mb = max(self.peak_mb, _status(self.process.pid, "VmHWM"), rss)
            if ready:
                line = out.readline()
                if not line:
                    return "crash", f"the worker died (exit {self.process.wait()})"
                answer = json.loads(line)
                return answer["outcome"], answer.get("detail", "")
            if rss > rss_limit_mb:
                self.kill()
                return "rss", f"over {rss_limit_mb} MB resident"
            if time.monotonic() > deadline:
                self.kill()
                return "hang", f"over {time_limit} s"

    def kill(self):
        self.process.kill()
        self.process.wait()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def run(files=None, budget=None, seed=0, time_limit=10.0, rss_limit_mb=2000,
        save_failures=None, extra_seeds=None, log=print):
    """Fuzz; return the counts by outcome (and ``peak_rss_mb``, ``seconds``)."""
    seeds = seed_images()
    if extra_seeds:
        for name in sorted(os.listdir(extra_seeds)):
            path = os.path.join(extra_seeds, name)
            if os.path.isfile(path) and os.path.getsize(path) < 2**20:
                with open(path, "rb") as fh:
                    seeds[name] = fh.read()
    names = sorted(seeds)
    others = [seeds[n] for n in names]
    rng = random.Random(seed)
    outcomes = ["scored", "named error", "silent", "crash", "hang", "rss"]
    counts = dict.fromkeys(outcomes, 0)
    failures = []
    start = time.monotonic()
    worker = Worker()
    peak = 0.0
    workdir = tempfile.mkdtemp(prefix="skacd-fuzz-")
    try:
        i = 0
        while (files is None or i < files) and (
            budget is None or time.monotonic() - start < budget
        ):
            name = names[i % len(names)] if i < len(names) else rng.choice(names)
            # The seeds themselves first: each must be scored.
            data = seeds[name] if i < len(names) else mutate(seeds[name], rng, others)
            ext = os.path.splitext(name)[1]
            path = os.path.join(workdir, f"fuzz-{i:06d}{ext}")
            with open(path, "wb") as fh:
                fh.write(data)
            outcome, detail = worker.ask(path, time_limit, rss_limit_mb)
            if i < len(names) and outcome != "scored":
                outcome, detail = "crash", f"the seed {name} was not scored: {detail}"
            counts[outcome] += 1
            if outcome in ("silent", "crash", "hang", "rss"):
                failures.append((path, outcome, detail))
                log(f"fuzz_images: {outcome}: {name} mutated ({path}): {detail}")
                if save_failures:
                    os.makedirs(save_failures, exist_ok=True)
                    shutil.copy(path, save_failures)
                if outcome != "silent":
                    peak = max(peak, worker.peak_mb)
                    worker.close()
                    worker = Worker()
            os.unlink(path)
            i += 1
    finally:
        peak = max(peak, worker.peak_mb)
        worker.close()
        shutil.rmtree(workdir, ignore_errors=True)
    counts["tried"] = sum(counts[k] for k in list(counts))
    counts["peak_rss_mb"] = round(peak)
    counts["seconds"] = round(time.monotonic() - start, 1)
    return counts


def summary(counts):
    return (
        f"fuzz_images: {counts['tried']} files tried, {counts['named error']} errors "
        f"named, {counts['scored']} scored, {counts['silent']} silent successes with "
        f"a Pillow warning, {counts['crash']} crashes, {counts['hang']} hangs, "
        f"{counts['rss']} over the RSS limit; peak RSS {counts['peak_rss_mb']} MB; "
        f"{counts['seconds']} s"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None,
                        help="how many files to try (default: until --budget)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds to run (default: 60 unless --files is given)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=10.0,
                        help="seconds per file before it counts as a hang (10)")
    parser.add_argument("--rss-limit-mb", type=float, default=2000,
                        help="resident memory of the worker before a file fails (2000)")
    parser.add_argument("--save-failures", default=None, metavar="DIR")
    parser.add_argument("--seeds", default=None, metavar="DIR",
                        help="more seed files (each under 1 MB) besides the built-in "
                        "ones")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    budget = args.budget if args.budget is not None or args.files else 60.0
    counts = run(args.files, budget, args.seed, args.time_limit, args.rss_limit_mb,
                 args.save_failures, args.seeds)
    print(summary(counts))
    bad = sum(counts[k] for k in ("silent", "crash", "hang", "rss"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
