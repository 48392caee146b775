"""Thumb-2 instructions as the cycle model sees them: class, registers read and written, address
registers, accumulator operand (capstone disassembly, once per basic block)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

_MUL = frozenset("""mul smulbb smulbt smultb smultt smulwb smulwt smmul smmulr smuad smuadx smusd smusdx
smull umull""".split())
_MAC = frozenset("""mla mls smlabb smlabt smlatb smlatt smlawb smlawt smlad smladx smlsd smlsdx smmla smmlar smmls
smmlsr smlal umlal smlalbb smlalbt smlaltb smlaltt smlald smlaldx smlsld smlsldx umaal usada8""".split())
#: DSP / SIMD data processing (M7: only the older instruction of a dual-issued pair)
_DSP = frozenset("""sxtb16 sxtab16 uxtb16 uxtab16 sadd16 ssub16 sadd8 ssub8 uadd16 usub16 uadd8 usub8 qadd qsub
qadd16 qsub16 qadd8 qsub8 qdadd qdsub shadd16 shsub16 shadd8 shsub8 uhadd16 uhsub16 uhadd8 uhsub8 uqadd16 uqsub16
uqadd8 uqsub8 sasx ssax uasx usax qasx qsax shasx shsax uhasx uhsax uqasx uqsax sel pkhbt pkhtb ssat16 usat16
usad8 rev rev16 revsh rbit clz ssat usat""".split()) | _MUL | _MAC
#: count as having a shifted operand on the M7 (bit-field, extend)
_SHIFTY = frozenset("""ubfx sbfx bfi bfc sxtb sxth uxtb uxth sxtab sxtah uxtab uxtah sxtb16 uxtb16 sxtab16
uxtab16""".split())
_BRANCH = frozenset("b bl bx blx cbz cbnz tbb tbh".split())
_LOAD = frozenset("ldr ldrb ldrh ldrsb ldrsh ldrt ldrbt ldrht ldrsbt ldrsht ldrex ldrexb ldrexh ldaex".split())
_STORE = frozenset("str strb strh strt strbt strht strex strexb strexh".split())
_LDM = frozenset("ldm ldmdb ldmia ldmib ldmda pop".split())
_STM = frozenset("stm stmdb stmia stmib stmda push".split())
_BARRIER = frozenset("dmb dsb isb".split())
_SYSTEM = frozenset("mrs msr cpsid cpsie svc bkpt wfi wfe sev yield udf".split())
_FPLOAD = frozenset("vldr".split())
_FPSTORE = frozenset("vstr".split())
_FPLDM = frozenset("vldmia vldmdb vstmia vstmdb vpush vpop vldm vstm".split())
_FPMAC = frozenset("vmla vmls vnmla vnmls vfma vfms vfnma vfnms".split())
_FPDIV = frozenset("vdiv vsqrt".split())


@dataclass(frozen=True, slots=True)
class Insn:
    """One decoded instruction."""

    address: int
    size: int
    name: str  # base mnemonic (no condition, no .w)
    cls: str  # a class of timing.CLASSES
    reads: frozenset[int]  # capstone register ids (flags: FLAGS)
    writes: frozenset[int]
    addr_regs: frozenset[int]  # base and index of a memory operand
    acc_regs: frozenset[int]  # the accumulator operands of a MAC
    nregs: int  # registers transferred by LDM/STM/PUSH/POP/VLDM
    reg_offset: bool  # memory operand with an index register
    conditional: bool  # condition code other than always (branch or inside an IT block)
    writes_pc: bool
    shifted: bool
    dsp: bool
    indirect: bool  # a branch whose target comes from a register or memory


#: pseudo register id for the condition flags
FLAGS = 10_000


@cache
def _disassembler():
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


def classify(name: str) -> str:
    """The timing class of a base mnemonic."""
    if name in _BRANCH:
        return "branch"
    if name in _LOAD:
        return "load"
    if name in _STORE:
        return "store"
    if name == "ldrd":
        return "loadd"
    if name == "strd":
        return "stored"
    if name in _LDM:
        return "ldm"
    if name in _STM:
        return "stm"
    if name in _MAC:
        return "mac"
    if name in _MUL:
        return "mul"
    if name in ("sdiv", "udiv"):
        return "div"
    if name == "it":
        return "it"
    if name == "nop":
        return "nop"
    if name in _BARRIER:
        return "barrier"
    if name in _SYSTEM:
        return "system"
    if name in _FPLOAD:
        return "fpload"
    if name in _FPSTORE:
        return "fpstore"
    if name in _FPLDM:
        return "fpldm"
    if name in _FPMAC:
        return "fpmac"
    if name in _FPDIV:
        return "fpdiv"
    if name.startswith("v"):
        return "fp"
    return "alu"


def decode_block(code: bytes, address: int) -> list[Insn]:
    """The instructions of ``code`` at ``address`` (Thumb-2, M-profile)."""
    import capstone
    from capstone import arm_const as a

    out = []
    for ins in _disassembler().disasm(code, address):
        name = ins.insn_name()
        cls = classify(name)
        regs_read, regs_written = ins.regs_access()
        reads, writes = set(regs_read), set(regs_written)
        addr: set[int] = set()
        regs: list[int] = []
        reg_offset = shifted = False
        for op in ins.operands:
            if op.type == a.ARM_OP_MEM:
                addr |= {r for r in (op.mem.base, op.mem.index) if r}
                reg_offset = reg_offset or bool(op.mem.index)
            elif op.type == a.ARM_OP_REG:
                regs.append(op.reg)
            if op.shift.type != a.ARM_SFT_INVALID and op.shift.value:
                shifted = True
        conditional = ins.cc not in (a.ARM_CC_AL, a.ARM_CC_INVALID)
        if ins.update_flags:
            writes.add(FLAGS)
        if conditional or name in ("adc", "sbc", "rrx"):
            reads.add(FLAGS)
        if name in ("cmp", "cmn", "tst", "teq"):
            writes.add(FLAGS)
        acc: frozenset[int] = frozenset()
        if cls == "mac" and regs:
            acc = frozenset(regs[:2]) if name.startswith(("smlal", "umlal", "smlsl", "umaal")) else frozenset(regs[-1:])
        writes_pc = a.ARM_REG_PC in writes or name in _BRANCH
        nregs = len(regs) if cls in ("ldm", "stm", "fpldm") else 0
        if cls == "fpldm" and any(capstone.arm_const.ARM_REG_D0 <= r <= capstone.arm_const.ARM_REG_D31
                                  for r in regs):
            nregs *= 2
        out.append(Insn(
            address=ins.address, size=ins.size, name=name, cls=cls,
            reads=frozenset(reads), writes=frozenset(writes - {a.ARM_REG_PC}), addr_regs=frozenset(addr),
            acc_regs=acc, nregs=nregs, reg_offset=reg_offset, conditional=conditional, writes_pc=writes_pc,
            shifted=shifted or name in _SHIFTY, dsp=name in _DSP,
            indirect=writes_pc and name not in ("b", "bl", "cbz", "cbnz"),
        ))
    return out
