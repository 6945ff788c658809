#!/usr/bin/env python3
"""Medians and goal ratios of the last `cargo bench --bench verify` run, from criterion's
target/criterion/<group>/<id>/new/estimates.json. Usage: python3 benches/ratios.py [TARGET_DIR]"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target") / "criterion"


medians = {}
for group in ["verify", "signature", "throughput"]:
    for path in sorted((root / group).glob("*/new/estimates.json")):
        name = f"{group}/{path.parent.parent.name}"
        medians[name] = json.loads(path.read_text())["median"]["point_estimate"]
        print(f"| `{name}` | {medians[name] / 1000:.2f} µs |")

GOALS = [
    ("verify/end_to_end", "verify/raw_rsa", "<=", 1.15),
    ("verify/end_to_end", "verify/raw_rsa", "<=", 1.25),
    ("verify/end_to_end_aws_lc", "verify/raw_rsa_aws_lc", "<=", 1.25),
    ("verify/openssl_pkcs7", "verify/end_to_end_aws_lc", ">=", 1.4),
    ("verify/raw_rsa_crate", "verify/raw_rsa", ">=", 1.8),
    ("verify/openssl_pkcs7", "verify/end_to_end", ">=", 1.1),
    # Issue #19's goals.
    ("verify/raw_rsa", "verify/raw_rsa_aws_lc", "<=", 1.2),
    ("verify/openssl_pkcs7", "verify/end_to_end", ">=", 1.4),
    ("signature/dsa", "verify/end_to_end", "<=", 6.0),
    # parallel_2 is the time per document with two threads: the ratio is the speed-up.
    ("verify/end_to_end", "verify/parallel_2", ">=", 1.85),
    # Per-iteration times: 2 threads do twice the documents, so scaling = 2 * t1 / t2.
    ("throughput/1_threads", "throughput/2_threads", ">=", 1.85),
]
print()
for num, den, op, goal in GOALS:
    a, b = medians.get(num), medians.get(den)
    if a is None or b is None:
        print(f"| {num} / {den} | missing | {op} {goal} |")
        continue
    ratio = a / b * (2 if num.startswith("throughput") else 1)
    held = ratio <= goal if op == "<=" else ratio >= goal
    print(f"| `{num}` / `{den}` | {ratio:.2f} | {op} {goal} | {'met' if held else 'NOT met'} |")
