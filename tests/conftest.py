"""Shared test helpers: fixtures folder and running the CLI in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

#: mcunet_model.h of the hand-written two-step models the harness tests link (4 bytes in, 4 out)
TWO_STEP_HEADER = """#include <stdint.h>
#define MCUNET_INPUT_BYTES 4
#define MCUNET_OUTPUT_BYTES 4
#define MCUNET_NUM_STEPS 2
int8_t *mcunet_input(void);
int8_t *mcunet_output(void);
int mcunet_invoke(void);
"""
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def build_cli(tmp_path):
    """Run ``python -m mcunet_tvm.build`` in-process; returns (exit code, report or None, out dir)."""
    from mcunet_tvm.build import main

    def run(*args: str, out: str = "out"):
        out_dir = tmp_path / out
        code = main([*args, "--out", str(out_dir)])
        report = out_dir / "report.json"
        return code, (json.loads(report.read_text()) if report.exists() else None), out_dir

    return run
