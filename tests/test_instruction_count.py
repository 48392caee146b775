"""The QEMU harness counts instructions exactly: K extra instructions measure as exactly K more."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcunet_tvm import toolchain
from mcunet_tvm.targets import get_target

from conftest import TWO_STEP_HEADER

MODEL = """#include "mcunet_model.h"
void mcunet_step_done(int step);
static int8_t buf[8];
int8_t *mcunet_input(void) { return buf; }
int8_t *mcunet_output(void) { return buf + 4; }
int mcunet_invoke(void) {
  __asm__ volatile(".rept %d\\n nop\\n .endr");
  mcunet_step_done(0);
  __asm__ volatile(".rept %d\\n nop\\n .endr");
  mcunet_step_done(1);
  for (int i = 0; i < 4; ++i) buf[4 + i] = (int8_t)(buf[i] * 3);
  return 0;
}
"""


def _count(tmp: Path, target: str, first: int, second: int) -> tuple[int, list[int], bytes]:
    spec = get_target(target)
    src = tmp / f"m{first}_{second}"
    src.mkdir()
    (src / "mcunet_model.h").write_text(TWO_STEP_HEADER)
    (src / "model.c").write_text(MODEL % (first, second))
    objects = toolchain.compile_objects(spec, [src / "model.c"], [src], src / "obj")
    elf = toolchain.link(spec, objects, src / "model.elf")
    result = toolchain.run(spec, elf, bytes([1, 2, 3, 4]), 4)
    return result.instructions, result.step_instructions, result.output


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4", "cortex-m55"])
def test_counts_are_exact(tmp_path, target: str) -> None:
    base, base_steps, out = _count(tmp_path, target, 0, 0)
    assert out == bytes([3, 6, 9, 12])
    for first, second in ((1, 0), (0, 7), (13, 50), (1000, 1)):
        total, steps, _ = _count(tmp_path, target, first, second)
        assert total - base == first + second
        assert steps[0] - base_steps[0] == first
        assert steps[1] - base_steps[1] == second


def test_counts_are_deterministic(tmp_path) -> None:
    a = _count(tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path, "cortex-m7", 5, 5)
    b = _count(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path, "cortex-m7", 5, 5)
    assert a == b
