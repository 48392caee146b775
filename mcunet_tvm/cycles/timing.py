"""Per-core timing tables of the cycle model: pure data, no logic (the rules that read them are in
:mod:`mcunet_tvm.cycles.model`).

Written from the Cortex-M4 Technical Reference Manual's instruction-timing table and load/store
notes (zero wait states; P, the pipeline refill after a taken branch, is 1-3 cycles there: we take
2), and, for the Cortex-M7, whose TRM publishes no instruction timings, from its pipeline
description (6-stage, in-order, dual issue, one load/store and one MAC pipe, branch prediction)
with latencies and pairing restrictions as measured and published by independent engineers.
Every number here is an assumption of the model and is reported with the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: instruction classes of :func:`mcunet_tvm.cycles.decode.classify`
CLASSES = (
    "alu", "mul", "mac", "div", "load", "store", "loadd", "stored", "ldm", "stm", "branch", "it", "nop",
    "barrier", "system", "fp", "fpmac", "fpdiv", "fpload", "fpstore", "fpldm",
)


@dataclass(frozen=True)
class CoreTiming:
    """Issue costs (cycles an instruction occupies the pipeline) and result latencies of one core."""

    name: str
    #: cycles per class for a single-issue in-order core (M4); for the M7, the class's issue occupancy
    cycles: dict[str, int]
    #: P: pipeline refill after a taken branch or a write to PC
    refill: int
    #: cycles per transferred register of LDM/STM/PUSH/POP (M4: N; M7: ceil(N/2) over its 64-bit path)
    regs_per_cycle: int
    #: dual issue (M7) or single issue (M4)
    dual_issue: bool
    #: result latencies by class (cycles from issue until a dependent instruction may issue); M7 only
    latency: dict[str, int] = field(default_factory=dict)
    #: a multiply-accumulate feeding the accumulator of the next one (accumulator forwarding); M7 only
    mac_to_acc_latency: int = 1
    #: an operand that is shifted (or extended, bit-field) must be ready this many cycles earlier; M7 only
    shifted_operand_extra: int = 0
    #: cycles lost by a mispredicted conditional branch or an indirect branch; M7 only
    mispredict_penalty: int = 0
    #: human-readable statement of what the table assumes (reported in ``cycles_estimate``)
    notes: tuple[str, ...] = ()


CORTEX_M4 = CoreTiming(
    name="cortex-m4",
    cycles={
        "alu": 1, "mul": 1, "mac": 1,  # M4: single-cycle 32x32 multiply, MLA/MLS, long and DSP MACs
        "div": 12,  # SDIV/UDIV take 2-12 by operand values: the upper bound
        "load": 2, "store": 2,  # single LDR*/STR*; pipelining rules in model.py (1 cycle when pipelined)
        "loadd": 3, "stored": 3,  # LDRD/STRD: 1 + N, never pipelined with neighbours
        "ldm": 1, "stm": 1,  # + N registers (+ P with PC)
        "branch": 1,  # + P when taken
        "it": 1, "nop": 1, "barrier": 1, "system": 1,
        "fp": 1, "fpmac": 3, "fpdiv": 14, "fpload": 2, "fpstore": 2, "fpldm": 1,
    },
    refill=2,
    regs_per_cycle=1,
    dual_issue=False,
    notes=(
        "Cortex-M4 TRM instruction timings, zero wait states",
        "taken branch or write to PC: 1 + P cycles with P = 2 (the TRM gives 1-3)",
        "single LDR/STR 2 cycles; 1 when pipelined after a single LDR whose result is not its address",
        "STR with an immediate offset 1 cycle; address generated from the previous instruction's result: +1",
        "LDRD/STRD 3, LDM/STM/PUSH/POP 1 + N (+ P with PC), TBB/TBH 2 + P",
        "multiplies and MACs 1 cycle (DSP dual MACs included), SDIV/UDIV 12 (upper bound of 2-12)",
    ),
)

CORTEX_M7 = CoreTiming(
    name="cortex-m7",
    cycles={
        "alu": 1, "mul": 1, "mac": 1, "div": 10,
        "load": 1, "store": 1, "loadd": 1, "stored": 1,  # 64-bit load/store path
        "ldm": 1, "stm": 1,  # + ceil(N / 2)
        "branch": 1, "it": 1, "nop": 1, "barrier": 4, "system": 2,
        "fp": 1, "fpmac": 1, "fpdiv": 14, "fpload": 1, "fpstore": 1, "fpldm": 1,
    },
    refill=0,
    regs_per_cycle=2,
    dual_issue=True,
    latency={
        "alu": 1, "mul": 2, "mac": 2, "div": 10, "load": 2, "loadd": 2, "ldm": 2, "it": 1, "nop": 1,
        "fp": 3, "fpmac": 4, "fpdiv": 14, "fpload": 2, "fpldm": 2, "system": 1, "barrier": 1, "branch": 1,
        "store": 1, "stored": 1, "stm": 1, "fpstore": 1,
    },
    mac_to_acc_latency=1,
    shifted_operand_extra=1,
    mispredict_penalty=5,
    notes=(
        "Cortex-M7: in-order dual issue, TCM/cache hits (zero wait states); the TRM publishes no timings, "
        "so pairing and latencies follow public measurements",
        "pairs: at most one load/store, one multiply/MAC, one shifted-operand (or extend, bit-field) "
        "instruction, one floating-point instruction; DSP/SIMD instructions only as the older of a pair; "
        "no dependency inside a pair; LDM/STM/PUSH/POP, divides, barriers and system instructions issue alone",
        "latencies: ALU 1, load 2, multiply/MAC 2 (1 into the accumulator of the next MAC), shifted operands "
        "needed 1 cycle earlier",
        "branches: correctly predicted 0 extra cycles (a 2-bit counter per conditional branch, direct "
        "unconditional branches always predicted), mispredicted or indirect (BX, POP PC, LDR PC, TBB) +5",
        "LDRD/STRD 1 cycle, LDM/STM/PUSH/POP 1 + ceil(N/2)",
    ),
)

CORES: dict[str, CoreTiming] = {t.name: t for t in (CORTEX_M4, CORTEX_M7)}
