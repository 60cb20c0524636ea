"""A one-minute run of benchmarks/fuzz_images.py (issue 13): mutated images of
every accepted format end as a score or a named error, never as a crash, a
hang, a memory blow-up, or a score of a file Pillow warned about."""

import importlib.util
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_images.py"


def _harness():
    spec = importlib.util.spec_from_file_location("fuzz_images", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mutator_is_deterministic_and_mutates():
    import random

    fuzz = _harness()
    seeds = fuzz.seed_images()
    assert {name.rsplit(".", 1)[1] for name in seeds} == {
        "jpg", "png", "bmp", "webp", "gif", "tif"}
    others = list(seeds.values())
    first = [fuzz.mutate(seeds["rgb.png"], random.Random(3), others) for _ in range(2)]
    assert first[0] == first[1]
    changed = sum(fuzz.mutate(seeds["rgb.png"], random.Random(s), others)
                  != seeds["rgb.png"] for s in range(50))
    assert changed >= 45


@pytest.mark.slow
def test_one_minute_fuzz_run(tmp_path):
    fuzz = _harness()
    lines = []
    counts = fuzz.run(budget=50, seed=13, time_limit=10, rss_limit_mb=2000,
                      save_failures=tmp_path / "failures", log=lines.append)
    print(fuzz.summary(counts))
    assert counts["tried"] >= 200, counts
    assert counts["named error"] > 0 and counts["scored"] > 0, counts
    assert {k: counts[k] for k in ("silent", "crash", "hang", "rss")} == dict.fromkeys(
        ("silent", "crash", "hang", "rss"), 0), lines[:10]
    assert counts["peak_rss_mb"] < 2000
