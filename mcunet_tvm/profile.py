"""``python -m mcunet_tvm.profile``: where the instructions go, operator by operator.

Builds the model for an emulated core and runs it once with every step
measured (:mod:`mcunet_tvm.op_profile`); prints the table, most expensive
first, and the totals per operator type. Takes the build's options except
``--run`` and ``--profile`` (always on here); ``--out`` defaults to
``build/profile``.
"""

from __future__ import annotations

import dataclasses
import sys


def main(argv: list[str] | None = None) -> int:
    from .build import _Parser, _require, add_build_arguments, list_models, options_from_args, run_cli
    from .presentation import build_summary, format_profile

    p = _Parser(prog="python -m mcunet_tvm.profile",
                description="Measure every operator's instructions of a model on an emulated Cortex-M core.")
    add_build_arguments(p, profile=True)
    args = p.parse_args(argv)
    _require(p, args)
    if args.list_models:
        return list_models()

    def present(result) -> None:
        if args.quiet:
            return
        print(build_summary(result.report))
        print()
        print(format_profile(result.profile))
        print(f"\nwritten: {args.out / 'profile.json'}")

    return run_cli(lambda: dataclasses.replace(options_from_args(args), run=True, profile=True), present)


if __name__ == "__main__":
    sys.exit(main())
