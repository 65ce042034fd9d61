"""What one model answer costs the orchestrator, by the answer's shape and size, measured in
one run on this machine.

    python benchmarks/parsing.py [--sizes 10000,100000,1000000,4000000] [--shapes NAME ...]

For each shape of tests/support/hostile_answers.py (repeated ``<think>``, runs of backticks, many
``def compute_reward(`` lines, a long program, ...) and each size, prints the CPU seconds of
what the loop does with an answer: ``parse_response``, then the de-duplication digest and
the policy check of the code it found. The answer limit (MAX_ANSWER_CHARS) is lifted here so
that the growth shows beyond it: linear time grows as the size does (x10 from 100 KB to
1 MB, x4 from 1 MB to 4 MB), quadratic time as its square. Then the time to refuse the
largest size with the limit in place.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from eureka_lab.reward.check import check_code
from eureka_lab.reward.parsing import MAX_ANSWER_CHARS, code_digest, parse_response

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.hostile_answers import SHAPES  # noqa: E402  (the tests' corpus of hostile answers)


def cost(text: str, limit: int) -> float:
    """CPU seconds of reading one answer as the loop does (``Loop._candidate``)."""
    gc.collect()
    started = time.process_time()
    result = parse_response(text, limit)
    if result.code is not None:
        code_digest(result.code)
        check_code(result.code)
    return time.process_time() - started


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,4000000")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"CPU seconds per answer, the limit of {MAX_ANSWER_CHARS:,} characters lifted")
    width = max(len(s) for s in args.shapes)
    print(f"{'shape':{width}}" + "".join(f"{_size(n):>10}" for n in sizes) + "   last growth")
    largest = max(sizes)
    refusal = 0.0  # the slowest, with the limit in place
    for shape in args.shapes:
        times = [cost(SHAPES[shape](n), limit=largest) for n in sizes]
        growth = f"x{times[-1] / times[-2]:.1f}" if len(times) > 1 and times[-2] > 0 else "-"
        print(f"{shape:{width}}" + "".join(f"{t:10.3f}" for t in times) + f"   {growth:>11}")
        if largest > MAX_ANSWER_CHARS:
            refusal = max(refusal, cost(SHAPES[shape](largest), limit=MAX_ANSWER_CHARS))
    if len(sizes) > 1:
        ratio = sizes[-1] / sizes[-2]
        print(f"(linear: last growth about x{ratio:.0f}; quadratic: x{ratio**2:.0f})")
    if largest > MAX_ANSWER_CHARS:
        print(
            f"refusing a {_size(largest)} answer with the limit in place: at most "
            f"{refusal * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
