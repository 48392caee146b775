"""The cycle model (``mcunet_tvm.cycles``): micro-benchmarks whose cycles follow by hand from the
timing rules (Cortex-M4 TRM; the documented M7 pairing and latency rules), and the cross-check
that the emulated run is QEMU's run (the same instructions per step)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mcunet_tvm import toolchain
from mcunet_tvm.cycles import CORTEX_M4, CORTEX_M7, estimate
from mcunet_tvm.cycles.emulate import MemoryMap, emulate
from mcunet_tvm.resources import RUNTIME_C
from mcunet_tvm.targets import get_target

from conftest import TWO_STEP_HEADER

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "arm-none-eabi-gcc"], capture_output=True).returncode != 0,
    reason="needs arm-none-eabi-gcc",
)

#: a flat memory for snippets: code and constants at 0 ("flash"), data at 0x20000000
SNIPPET_MAP = MemoryMap(regions=((0x0, 0x10000), (0x20000000, 0x10000)), flash=(0x0, 0x10000), counter=None)
RAM = 0x20000000


def _snippet(tmp_path: Path, body: str, core, **kw) -> tuple[int, int]:
    """(instructions, cycles) of ``body`` from ``_start`` to ``done`` on ``core``."""
    src = tmp_path / "snippet.S"
    src.write_text(f""".syntax unified
.thumb
.text
.global _start
.thumb_func
_start:
{body}
done:
  nop
""")
    elf = tmp_path / "snippet.elf"
    subprocess.run(["arm-none-eabi-gcc", f"-mcpu={core.name}", "-mthumb", "-nostdlib", "-Ttext=0x100", "-o", str(elf),
                    str(src)], check=True, capture_output=True)
    syms = dict(reversed(line.split()[::2]) for line in subprocess.run(
        ["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout.splitlines())
    run = emulate(elf, SNIPPET_MAP, core, start=int(syms["_start"], 16), stop=int(syms["done"], 16),
                  registers={"r0": RAM, **kw.pop("registers", {})}, **kw)
    return run.instructions, run.cycles


def test_m4_countdown_loop(tmp_path) -> None:
    """movs 1; per iteration subs 1 + bne 1; each of the 9 taken bne + P (2): 1 + 10 * 2 + 9 * 2 = 39."""
    body = "  movs r1, #10\n1:\n  subs r1, #1\n  bne 1b\n"
    assert _snippet(tmp_path, body, CORTEX_M4) == (21, 39)


def test_m4_load_store_pipelining(tmp_path) -> None:
    """TRM load/store rules, instruction by instruction:

    mov r6, r0 1; ldr r1,[r6] 2 + 1 (address from the previous data-processing result);
    ldr r2,[r6,#4] 1 and ldr r3,[r6,#8] 1 (pipelined behind a load); str r1,[r6,#12] 1 (immediate offset);
    ldr r4,[r6,#16] 2 (nothing pipelines after a store); ldr r5,[r4] 2 (its address is the previous
    load's result); ldrd 3 (1 + N, never pipelined); push {r4-r7} 1 + 4; pop {r4-r7} 1 + 4.
    1 + 3 + 1 + 1 + 1 + 2 + 2 + 3 + 5 + 5 = 24.
    """
    body = """  mov r6, r0
  ldr r1, [r6]
  ldr r2, [r6, #4]
  ldr r3, [r6, #8]
  str r1, [r6, #12]
  ldr r4, [r6, #16]
  ldr r5, [r4]
  ldrd r8, r9, [r6]
  push {r4-r7}
  pop {r4-r7}
"""
    assert _snippet(tmp_path, body, CORTEX_M4, registers={"r4": RAM}) == (10, 24)


def test_m4_mac_loop(tmp_path) -> None:
    """4 iterations of: ldr (post-increment) 2, ldr 1 (pipelined), smlad 1, smlabb 1, subs 1, bne 1
    (+ P = 2 when taken, 3 times), after movs 1: 1 + 4 * 7 + 3 * 2 = 35."""
    body = """  movs r3, #4
1:
  ldr r1, [r0], #4
  ldr r2, [r0], #4
  smlad r4, r1, r2, r4
  smlabb r5, r1, r2, r5
  subs r3, #1
  bne 1b
"""
    assert _snippet(tmp_path, body, CORTEX_M4) == (25, 35)


def test_m4_flash_wait_states(tmp_path) -> None:
    """With W = 2 wait states: the loop of the countdown test gains 2 per taken bne (9) and the load
    from flash (address 0x100) 2: 39 + 18 + ldr 2 + 2 = 61."""
    body = "  movs r1, #10\n1:\n  subs r1, #1\n  bne 1b\n  ldr r2, [r7]\n"
    assert _snippet(tmp_path, body, CORTEX_M4, registers={"r7": 0x100}, flash_wait_states=2) == (22, 61)


@pytest.mark.parametrize(("body", "expected", "why"), [
    ("".join(f"  add.w r{k}, r{k}, #1\n" for k in range(1, 9)), (8, 4), "independent ALU pairs: 8 in 4 cycles"),
    ("  add.w r1, r1, #1\n" * 8, (8, 8), "a dependent chain issues one a cycle"),
    ("".join(f"  ldr r{k}, [r0, #{4 * k}]\n" for k in range(1, 5)), (4, 4), "one load/store per cycle"),
    ("".join(f"  ldr r{k}, [r0, #{4 * k}]\n  add.w r{k + 4}, r{k + 4}, #1\n" for k in range(1, 5)), (8, 4),
     "a load pairs with an independent ALU instruction"),
    ("  ldr r1, [r0]\n  add.w r2, r1, #1\n", (2, 3), "load-use: the add issues 2 cycles after the load"),
    ("  smlad r4, r1, r2, r4\n" * 4, (4, 4), "MAC into the next MAC's accumulator: 1 cycle (forwarding)"),
    ("  smlad r4, r1, r2, r4\n  add.w r5, r4, #1\n", (2, 3), "a MAC result into an ALU operand: 2 cycles"),
    ("  smlad r4, r1, r2, r4\n  add.w r5, r5, #1\n", (2, 1), "DSP older, ALU younger: dual issue"),
    ("  add.w r5, r5, #1\n  smlad r4, r1, r2, r4\n", (2, 2), "DSP only as the older of a pair"),
    ("  smulbb r4, r1, r2\n  smulbb r5, r1, r3\n", (2, 2), "one multiply pipe"),
    ("  add.w r1, r2, r3, lsl #2\n  add.w r4, r5, r6, lsl #2\n", (2, 2), "one shifted operand a cycle"),
    ("  add.w r1, r2, r3, lsl #2\n  add.w r4, r5, r6\n", (2, 1), "shifted + plain: dual issue"),
    ("  push {r4-r7}\n", (1, 3), "STM of 4 registers: 1 + ceil(4 / 2)"),
])
def test_m7_issue_rules(tmp_path, body: str, expected: tuple[int, int], why: str) -> None:
    """Straight-line M7 code from an empty pipeline: cycles = last issue cycle + 1 (``why``)."""
    assert _snippet(tmp_path, body, CORTEX_M7, registers={"r2": 3, "r3": 5}) == expected, why


def test_m7_loop_branch_prediction(tmp_path) -> None:
    """subs + bne dual issue (a branch waits for no flag): 1 cycle an iteration; the 2-bit counter
    starts weakly not-taken, so the first taken bne and the final not-taken one mispredict (+5 each):
    10 * 1 + 2 * 5 = 20."""
    body = "  movs r1, #10\n1:\n  subs r1, #1\n  bne 1b\n"
    # movs pairs with nothing before it; the first block is movs, subs, bne: movs c0, subs c1 (r1), bne c1
    assert _snippet(tmp_path, body, CORTEX_M7) == (21, 1 + 10 + 10)


MODEL = """#include "mcunet_model.h"
void mcunet_step_done(int step);
static int8_t buf[8];
int8_t *mcunet_input(void) { return buf; }
int8_t *mcunet_output(void) { return buf + 4; }
int mcunet_invoke(void) {
  __asm__ volatile(".rept %d\\n nop\\n .endr");
  mcunet_step_done(0);
  for (int i = 0; i < 4; ++i) buf[4 + i] = (int8_t)(buf[i] * 3);
  mcunet_step_done(1);
  return 0;
}
"""


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7"])
def test_same_run_as_qemu(tmp_path, target: str) -> None:
    """The emulated harness run has QEMU's exact instructions per step; 40 more NOPs in step 0 are 40
    more instructions and (M4: 1 cycle each; M7: two a cycle) 40 or 20 more cycles."""
    spec = get_target(target)
    runs = []
    for nops in (10, 50):
        src = tmp_path / f"n{nops}"
        src.mkdir()
        (src / "mcunet_model.h").write_text(TWO_STEP_HEADER)
        (src / "model.c").write_text(MODEL % nops)
        elf = toolchain.link(spec, toolchain.compile_objects(spec, [src / "model.c"], [src], src / "obj"),
                             src / "model.elf")
        qemu = toolchain.run(spec, elf, bytes([1, 2, 3, 4]), 4)
        est = estimate(spec.mcpu, RUNTIME_C / "boards" / spec.board, elf, bytes([1, 2, 3, 4]), 2,
                       qemu_step_instructions=qemu.step_instructions)
        assert est.step_instructions == qemu.step_instructions
        assert est.total_instructions == qemu.instructions
        runs.append(est)
    assert runs[1].step_instructions[0] - runs[0].step_instructions[0] == 40
    assert runs[1].step_cycles[0] - runs[0].step_cycles[0] == (40 if target == "cortex-m4" else 20)
    assert runs[1].step_cycles[1] == runs[0].step_cycles[1]


def test_build_reports_cycles(build_cli) -> None:
    """``--run --cycles``: report.json ``cycles_estimate`` beside QEMU's count, stated as an estimate
    (per-operator cycles in profile.json: tests/test_profile_and_tune.py)."""
    code, report, out = build_cli("--target", "cortex-m4", "--model", "demo-cnn", "--run", "--cycles", "--quiet",
                                  "--flash-wait-states", "1")
    assert code == 0
    est = report["cycles_estimate"]
    assert est["is_estimate"] is True and est["instructions"] == report["qemu"]["instructions"]
    assert est["total"] > est["instructions"]  # the M4 issues at most one instruction a cycle
    assert est["assumptions"]["flash_wait_states"] == 1 and est["assumptions"]["not_modelled"]
    assert not (out / "profile.json").exists()


@pytest.mark.parametrize(("args", "where"), [
    (("--target", "cortex-m4", "--cycles"), "--cycles"),  # nothing runs
    (("--target", "cortex-m55", "--run", "--cycles"), "--cycles"),  # no timing table
    (("--target", "cortex-m4", "--run", "--flash-wait-states", "2"), "--flash-wait-states"),
])
def test_bad_cycle_options(build_cli, capsys, args: tuple[str, ...], where: str) -> None:
    """Each is refused before any work, naming the option."""
    code, report, _ = build_cli(*args, "--model", "demo-cnn")
    assert code == 2 and report is None
    assert where in capsys.readouterr().err
