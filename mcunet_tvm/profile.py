"""``python -m mcunet_tvm.profile``: where the instructions go, operator by operator.

Builds the model with ``--run --profile`` (the same options as ``python -m
mcunet_tvm.build``; ``--out`` defaults to ``build/profile``), measures every
step on the emulated core in one run (:mod:`mcunet_tvm.op_profile`) and
prints the table, most expensive first, and the totals per operator type.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .build import options_from_args, parse_args, run_cli
    from .presentation import build_summary, format_profile

    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(Path("build") / "profile")]
    args = parse_args(argv)

    def present(result) -> None:
        print(build_summary(result.report))
        print()
        print(format_profile(result.profile))
        print(f"\nwritten: {args.out / 'profile.json'}")

    return run_cli(lambda: dataclasses.replace(options_from_args(args), run=True, profile=True), present)


if __name__ == "__main__":
    sys.exit(main())
