# SPDX-License-Identifier: MIT
"""The examples keep running (small sizes)."""
import json
import os
import subprocess
import sys

EX = os.path.join(os.path.dirname(__file__), "..", "examples")


def test_pool_lookup_example():
    out = subprocess.run(
        [sys.executable, os.path.join(EX, "pool_lookup.py"), "--entries",
         "20000", "--workers", "2", "--seconds", "0.5", "--start", "fork"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.count("lookups/s") == 2 and "check: 0 problems" in out


def test_bench_pool_example(tmp_path):
    prefix = str(tmp_path / "py")
    subprocess.run(
        [sys.executable, os.path.join(EX, "bench_pool.py"), "--entries",
         "5000", "--seconds", "0.3", "--updates", "1", "--only",
         "shmgraph", "--out", prefix],
        capture_output=True, text=True, timeout=120, check=True)
    doc = json.load(open(prefix + ".json"))
    (r,) = doc["results"]
    assert r["system"] == "shmgraph"
    assert all(x > 0 for x in r["lookups_per_s_per_worker"])
    assert r["update_latency_ms"]["samples"]
    assert "shmgraph" in open(prefix + ".txt").read()


def test_readme_example_runs(segname):
    """The README's "From Python" example, taken from README.md itself."""
    doc = os.path.join(EX, "..", "..", "..", "README.md")
    text = open(doc).read().split("## From Python", 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"/demo"', repr(segname))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60, check=True,
                         env=dict(os.environ, PYTHONPATH=os.path.join(
                             EX, ".."))).stdout
    assert out == "16\n"
