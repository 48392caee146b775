"""The cycle model's rules: the cost of one basic block on a core (computed once per block), and the
run-time part, the branch at its end (taken or not, predicted or not).

A block is costed from an empty pipeline: no stall or pairing carries over a block boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decode import FLAGS, Insn
from .timing import CoreTiming

_MEM = frozenset(("load", "store", "loadd", "stored", "fpload", "fpstore"))
_MULTIPLY = frozenset(("mul", "mac"))
_FP = frozenset(("fp", "fpmac", "fpdiv"))
_SINGLE_ISSUE = frozenset(("ldm", "stm", "div", "barrier", "system", "fpldm", "fpdiv"))
_DATA_PROCESSING = frozenset(("alu", "mul", "mac"))


@dataclass(frozen=True, slots=True)
class BlockCost:
    """What a block costs: instructions, cycles up to its last instruction, and how its end is settled."""

    instructions: int
    cycles: int
    #: the end address (the fall-through successor)
    end: int
    #: "none" (no branch at the end), "always" (unconditional, direct), "cond" (conditional), "indirect"
    branch: str
    #: address of the branch at the end (the predictor's key)
    branch_pc: int
    #: M4: cycles a taken conditional branch adds (the refill)
    taken_extra: int


def block_cost(insns: list[Insn], core: CoreTiming) -> BlockCost:
    """The cost of the straight-line ``insns`` (the last may branch) on ``core``."""
    cycles, taken_extra = (_dual_issue(insns, core) if core.dual_issue else _single_issue(insns, core))
    last = insns[-1] if insns else None
    branch = "none"
    if last is not None and last.writes_pc:
        branch = "cond" if last.conditional else ("indirect" if last.indirect else "always")
        if core.dual_issue and branch == "cond" and last.indirect:
            branch = "cond-indirect"
    end = last.address + last.size if last else 0
    return BlockCost(len(insns), cycles, end, branch, last.address if last else 0, taken_extra)


def _loaded(ins: Insn) -> frozenset[int]:
    return ins.writes - ins.addr_regs if ins.cls == "load" else ins.writes


def _single_issue(insns: list[Insn], core: CoreTiming) -> tuple[int, int]:
    """Cortex-M4: each instruction's table cost, with the TRM's load/store pipelining and refills."""
    t = core.cycles
    total = taken_extra = 0
    prev: Insn | None = None
    for k, ins in enumerate(insns):
        c = t[ins.cls]
        if ins.cls in ("ldm", "stm", "fpldm"):
            c += ins.nregs
        elif ins.cls == "load" and prev is not None and prev.cls == "load" and not (_loaded(prev) & ins.addr_regs):
            c = 1  # pipelined behind the previous single load
        elif ins.cls == "store":
            if not ins.reg_offset:
                c = 1  # STR Rx,[Ry,#imm]: the data phase overlaps the next instruction
            elif prev is not None and prev.cls == "load" and not (_loaded(prev) & ins.addr_regs):
                c = 1
        if ins.cls in _MEM and prev is not None and prev.cls in _DATA_PROCESSING and prev.writes & ins.addr_regs:
            c += 1  # no forwarding path from a data-processing result into address generation
        if ins.writes_pc:
            if ins.name in ("tbb", "tbh"):
                c = 2
            if ins.conditional and k == len(insns) - 1:
                taken_extra = core.refill
            else:
                c += core.refill
        total += c
        prev = ins
    return total, taken_extra


def _can_pair(a: Insn, b: Insn) -> bool:
    """Whether ``b`` may issue in the same cycle as the older ``a`` (Cortex-M7)."""
    if a.cls in _SINGLE_ISSUE or b.cls in _SINGLE_ISSUE or a.writes_pc:
        return False
    if b.writes_pc and b.cls not in ("branch",):
        return False
    if (a.cls in _MEM and b.cls in _MEM) or (a.cls in _MULTIPLY and b.cls in _MULTIPLY):
        return False
    if (a.shifted and b.shifted) or b.dsp or (a.cls in _FP and b.cls in _FP):
        return False
    reads = b.reads - {FLAGS} if b.cls == "branch" else b.reads
    return not (reads & a.writes) and not ((b.writes & a.writes) - {FLAGS})


def _dual_issue(insns: list[Insn], core: CoreTiming) -> tuple[int, int]:
    """Cortex-M7: in-order issue of up to two instructions a cycle, a register scoreboard for latencies."""
    ready: dict[int, int] = {}
    ready_acc: dict[int, int] = {}
    cyc = -1  # issue cycle of the latest instruction
    slots = 0  # instructions issued in cycle ``cyc``
    free = 0  # first cycle the next instruction may issue in (after multi-cycle instructions)
    prev: Insn | None = None
    for ins in insns:
        need = 0
        extra = core.shifted_operand_extra if ins.shifted else 0
        for r in ins.reads:
            if r == FLAGS and ins.cls == "branch":
                continue  # resolved late; the branch is predicted
            if r in ins.acc_regs and r in ready_acc:
                at = ready_acc[r]
            elif r in ready:
                at = ready[r] + extra
            else:
                continue  # produced before the block: ready
            need = max(need, at)
        if slots == 1 and prev is not None and _can_pair(prev, ins) and need <= cyc:
            slots = 2
        else:
            cyc = max(cyc + 1, need, free)
            slots = 2 if ins.cls in _SINGLE_ISSUE else 1
        occupancy = core.cycles[ins.cls]
        if ins.cls in ("ldm", "stm", "fpldm"):
            occupancy += -(-ins.nregs // core.regs_per_cycle)
        free = max(free, cyc + occupancy)
        lat = core.latency[ins.cls] + occupancy - 1
        for w in ins.writes:
            ready[w] = cyc + lat
            if ins.cls == "mac":
                ready_acc[w] = cyc + core.mac_to_acc_latency
            else:
                ready_acc.pop(w, None)
        prev = ins
    return (max(cyc + 1, free) if insns else 0), 0


class BranchSettler:
    """The run-time cost of the branch ending a block, given whether it was taken."""

    def __init__(self, core: CoreTiming, flash_wait_states: int) -> None:
        self.core = core
        self.wait = flash_wait_states
        self.counters: dict[int, int] = {}  # M7: 2-bit saturating counter per conditional branch

    def settle(self, block: BlockCost, taken: bool) -> int:
        """Cycles the branch ending ``block`` adds beyond :attr:`BlockCost.cycles`."""
        extra = self.wait if taken else 0  # the refill fetches from flash
        if not self.core.dual_issue:
            return extra + (block.taken_extra if taken else 0)
        kind = block.branch
        if kind == "indirect" or (kind == "cond-indirect" and taken):
            return extra + self.core.mispredict_penalty
        if kind == "cond":
            c = self.counters.get(block.branch_pc, 1)
            if (c >= 2) != taken:
                extra += self.core.mispredict_penalty
            self.counters[block.branch_pc] = min(c + 1, 3) if taken else max(c - 1, 0)
        return extra
