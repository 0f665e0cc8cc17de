"""Reads bench/kernels/run.sh's JSON lines on stdin and prints the GEMM fraction of the measured instruction peak
for one kernel set at M = 1..8 (bench/encoder/run.sh runs it after the side-by-side)."""
import json
import sys


def main() -> None:
    isa = sys.argv[1]
    rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
    peak = next((r["peak_gops"] for r in rows if r.get("isa") == isa and "peak_gops" in r), None)
    cells = {(r["k"], r["n"], r["m"]): r for r in rows if r.get("isa") == isa and "m" in r and r["m"] <= 8}
    shapes = sorted({(k, n) for (k, n, _) in cells})
    if peak is None or not shapes:
        sys.exit(f"gemm_table: no {isa} rows in the GEMM benchmark's output")
    print(f"\nGEMM fraction of the measured peak, {isa} (peak {peak} GOP/s), M = 1..8, one thread")
    print("  K x N       | " + " ".join(f"M={m:<4}" for m in range(1, 9)))
    for k, n in shapes:
        fractions = " ".join(f"{cells[(k, n, m)]['fraction_of_peak']:.2f}  " for m in range(1, 9))
        print(f"  {k:4} x {n:4} | {fractions}")


if __name__ == "__main__":
    main()
