"""Cold start: seconds from launching `doorstep demo` on a fresh data dir to the first 200 /readyz.

Each run uses a new, empty data directory (embedded SQLite), so the time includes
interpreter start-up, imports, the migrations, seeding the demo network (argon2
password hashes) and the HTTP listener coming up. Loopback only; the server is
stopped after each run.

Prints one JSON line:
{"benchmark": "cold_start", "median_s": ..., "runs_s": [...], "runs": 3}

Usage: python benchmarks/cold_start.py [--runs 3] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import LOOPBACK, clean_env, free_port, log_tail, server_process, wait_ready


def one_run(*, timeout: float) -> float:
    """Seconds from spawning `doorstep demo` to its first 200 on /readyz."""
    with tempfile.TemporaryDirectory(prefix="doorstep-cold-") as tmp:
        env = clean_env(DOORSTEP_DATA_DIR=str(Path(tmp) / "data"), DOORSTEP_LOG_LEVEL="WARNING")
        port = free_port()
        log_path = Path(tmp) / "server.log"
        args = ["demo", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]
        started = time.perf_counter()
        with server_process(args, env=env, log_path=log_path) as server:
            try:
                wait_ready(f"http://{LOOPBACK}:{port}/readyz", server, timeout=timeout, poll=0.01)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\n{log_tail(log_path)}") from None
            return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cold starts and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run")
    args = parser.parse_args(argv)
    try:
        runs = [one_run(timeout=args.timeout) for _ in range(max(1, args.runs))]
    except RuntimeError as error:
        print(f"cold_start: {error}", file=sys.stderr)
        message = str(error).splitlines()[0][:300]
        print(json.dumps({"benchmark": "cold_start", "error": message}), flush=True)
        return 1
    figures = {
        "benchmark": "cold_start",
        "median_s": round(statistics.median(runs), 3),
        "runs_s": [round(r, 3) for r in runs],
        "runs": len(runs),
        "database": "sqlite",
    }
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
