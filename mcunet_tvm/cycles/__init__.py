"""A cycle *estimate* beside the exact instruction count: a model, not a measurement.

QEMU counts the instructions of an inference exactly but has no notion of time. This package runs
the same ELF once more, in unicorn (QEMU's CPU core as a library), with one hook per executed basic
block; every distinct block is disassembled once with capstone and costed once by a per-core timing
model, and the costs of the executed blocks are summed. The dynamic instruction mix is that of the
QEMU run: the harness reads the board's counter at the same points (``mcunet_step_done``), and the
unicorn instruction count of every step must equal QEMU's (checked on every estimate; a mismatch is
an error, :func:`estimate`).

Algorithm
    1. Map the board's linker-script regions and its counter, load the image, run from reset with
       semihosting served from memory (:mod:`.emulate`).
    2. Per new block: decode (:mod:`.decode`: class, registers read/written, address and accumulator
       registers), cost from an empty pipeline (:mod:`.model`):
       - Cortex-M4, single issue: the TRM's cycles per instruction (:data:`.timing.CORTEX_M4`), a
         single LDR/STR pipelined behind a single LDR (1 cycle instead of 2) unless its address is
         that load's result, STR with an immediate offset 1 cycle, +1 when an address comes from the
         previous data-processing instruction, LDM/STM 1 + N, taken branches 1 + P (P = 2).
       - Cortex-M7, in-order dual issue (:data:`.timing.CORTEX_M7`): a register scoreboard
         (ALU 1, load 2, multiply/MAC 2 but 1 into the next MAC's accumulator, shifted operands one
         cycle earlier) and pairing rules (at most one load/store, one multiply, one shifted-operand,
         one floating-point instruction per pair; DSP/SIMD only as the older; no dependency inside
         a pair; multi-cycle and system instructions alone).
    3. Per executed block, settle the branch ending the previous one from where execution went:
       M4: + P when a conditional branch was taken; M7: a 2-bit counter per conditional branch,
       + the mispredict penalty when it guessed wrong and on every indirect branch.
    4. ``flash_wait_states`` W: + W per taken branch (the refill fetches from flash) and + W per
       data read from the FLASH region (weights, tables: counted by a memory hook only when W > 0).
       Sequential fetch is assumed hidden by the flash prefetch buffer.
    5. Per step: the harness's stamps differenced, minus the cost of two back-to-back stamps,
       exactly as ``main_qemu.c`` does with QEMU's clock.

Limits (what the model does not capture)
    Caches, TCM/bus contention and write-buffer stalls; data-dependent timings (SDIV/UDIV take a
    fixed 12 cycles on the M4, 10 on the M7); instructions skipped inside an IT block are costed
    as executed; no stall or pairing crosses a block boundary; the M7 predictor, penalty and
    pairing rules are approximations of an undocumented core (public measurements, not Arm's
    figures); interrupts. It is an estimate to compare kernels and cores, not a substitute for
    the DWT cycle counter on silicon. Cortex-M4 and M7 only (unicorn has no Helium core).

Cost: about 1 s per 2-3 million instructions, so it runs on ``profile`` and ``build --run
--cycles`` only, not on every ``--run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import McunetError
from .timing import CORES, CORTEX_M4, CORTEX_M7, CoreTiming

__all__ = ["CORES", "CORTEX_M4", "CORTEX_M7", "CoreTiming", "CycleEstimate", "estimate", "supports"]

#: what every estimate states it leaves out
NOT_MODELLED = (
    "caches, TCM and bus contention, write-buffer stalls",
    "data-dependent timings (divides take a fixed count)",
    "instructions skipped in IT blocks are costed as executed",
    "stalls and pairing across basic-block boundaries",
    "interrupts",
)


@dataclass(frozen=True)
class CycleEstimate:
    """Modelled cycles of one inference, in total and per step, with the instructions they came from."""

    core: str
    total_cycles: int
    total_instructions: int
    step_cycles: list[int]
    step_instructions: list[int]
    flash_wait_states: int

    def report(self) -> dict:
        """``report.json`` ``cycles_estimate``."""
        core = CORES[self.core]
        return {
            "total": self.total_cycles,
            "instructions": self.total_instructions,
            "cycles_per_instruction": round(self.total_cycles / max(self.total_instructions, 1), 3),
            "model": f"{core.name} timing model (mcunet_tvm.cycles)",
            "is_estimate": True,
            "assumptions": {
                "flash_wait_states": self.flash_wait_states,
                "memory": "zero-wait-state SRAM for data and stack; code and constants in flash with "
                          f"{self.flash_wait_states} wait states on refills and data reads",
                "timings": list(core.notes),
                "not_modelled": list(NOT_MODELLED),
            },
        }


def supports(mcpu: str | None) -> bool:
    """Whether the cycle model has a timing table for this core."""
    return mcpu in CORES


def _intervals(stamps: list[int], steps: int) -> tuple[list[int], int]:
    """Per-step counts and total from the harness's counter reads, as ``main_qemu.c`` computes them."""
    if len(stamps) != steps + 4:
        raise McunetError(f"the emulated harness read its counter {len(stamps)} times, expected {steps + 4}",
                          hint="rebuild: the ELF and the generated C are out of step")
    overhead = stamps[1] - stamps[0]
    marks = stamps[2:]
    per = [max(marks[i + 1] - marks[i] - overhead, 0) for i in range(steps + 1)]
    return per[:steps], sum(per)


def estimate(mcpu: str, board_dir: Path, exe: Path, input_bytes: bytes, steps: int,
             flash_wait_states: int = 0, qemu_step_instructions: list[int] | None = None) -> CycleEstimate:
    """Run ``exe`` once in the emulator and model its cycles; ``steps`` is the model's step count.

    With ``qemu_step_instructions``, the emulator's per-step instructions must equal them (the same run).
    """
    from ..errors import DeviceRunError
    from .emulate import board_memory_map, emulate

    if mcpu not in CORES:
        raise McunetError(f"the cycle model has no timing table for {mcpu}", where="--cycles",
                          hint=f"use one of {', '.join(sorted(CORES))}")
    run = emulate(exe, board_memory_map(board_dir), CORES[mcpu], {"input.bin": input_bytes},
                  flash_wait_states=flash_wait_states)
    if run.exit_code != 0:
        raise DeviceRunError(f"the emulated program exited with {run.exit_code}: {run.console.strip()}",
                             where=str(exe))
    step_instructions, total_instructions = _intervals([s[0] for s in run.stamps], steps)
    step_cycles, total_cycles = _intervals([s[1] for s in run.stamps], steps)
    if qemu_step_instructions is not None and step_instructions != list(qemu_step_instructions):
        diff = next(k for k, (a, b) in enumerate(zip(step_instructions, qemu_step_instructions, strict=False))
                    if a != b) if len(step_instructions) == len(qemu_step_instructions) else -1
        raise DeviceRunError(f"the cycle model's run differs from QEMU's (first at step {diff}): "
                             "the instruction mix is not that of the measured run", where=str(exe))
    return CycleEstimate(mcpu, total_cycles, total_instructions, step_cycles, step_instructions, flash_wait_states)
