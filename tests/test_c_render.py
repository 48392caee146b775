"""The C renderer and RemoveUnusedBinds: the C is TVM's, without the text edits that made it ours.

The oracle of the differential test is the pipeline this renderer replaced: TVM's
``target.build.c`` on the lowered kernels, then the old text edits (drop TVM's preamble,
``extern "C"`` guards and forward declarations; delete unused locals; insert the GCC
attribute). A test may process text; the compiler no longer does.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import tvm
from tvm import tirx
from tvm.ir.supply import UniqueNameSupply

from mcunet_tvm.codegen import c_render
from mcunet_tvm.codegen.tir_to_c import _HEADER, deduplicate, kernels_to_c, lower_kernels
from mcunet_tvm.kernels import KernelChoice, build_kernel, shared_choice
from mcunet_tvm.kernels.common import NO_PRESCHEDULE
from mcunet_tvm.kernels.elementwise import add_rescale_table
from mcunet_tvm.kernels.simd import SimdConfig, helium_config
from mcunet_tvm.ops import Dense, ResizeBilinear, Softmax
from mcunet_tvm.passes import RemoveUnusedBinds
from mcunet_tvm.passes.remove_unused_binds import remove_unused_binds
from mcunet_tvm.pipeline import tvm_target
from mcunet_tvm.quant.fixedpoint import prepare_softmax

from opcases import (
    add_case,
    batch_matmul_case,
    conv_case,
    dense_case,
    mean_case,
    pad_case,
    pool_case,
    prelu_case,
    reduce_case,
)

# ---- the oracle: today's text edits of TVM's output, kept here only ---------------------------
_SIMD_PRIMITIVE = r"^int32_t mcunet_(read_s8x4|read_s16x2|sx\w+|sml\w+|sadd16|widen_\w+|smmlar|ssat8|mve_\w+)\(.*\);$"
_LOCAL = re.compile(r"^\s*(?:u?int(?:8|16|32|64)_t|bool) (\w+) = ([^;]*);$")


def _drop_unused_locals(code: str) -> str:
    functions = re.split(r"(?m)^(?=\w[^;\n]*\)\s*\{$)", code)
    result = []
    for body in functions:
        lines = body.split("\n")
        while True:
            counts: dict[str, int] = {}
            for name in re.findall(r"\w+", body):
                counts[name] = counts.get(name, 0) + 1
            matches = [(i, _LOCAL.match(line)) for i, line in enumerate(lines)]
            drop = {i for i, m in matches
                    if m and counts.get(m.group(1), 0) == 1 and not re.search(r"\w\(", m.group(2))}
            if not drop:
                break
            lines = [line for i, line in enumerate(lines) if i not in drop]
            body = "\n".join(lines)
        result.append(body)
    return "".join(result)


def _tvm_source(lowered: dict[str, tirx.PrimFunc], target, no_preschedule: set[str]) -> tuple[str, dict[str, str]]:
    """The old pipeline's C and prototypes for already lowered kernels."""
    code = tvm.get_global_func("target.build.c")(tvm.IRModule(lowered), target).inspect_source()
    lines = []
    for line in code.splitlines():
        if line.startswith(("#include", "#define TVM_EXPORTS", "// tvm target")) or "__tvm_ffi__library_ctx" in line:
            continue
        line = line.replace("TVM_DLL ", "")
        if re.match(r"^\w+ __builtin_\w+\(.*\);$", line) or re.match(_SIMD_PRIMITIVE, line):
            continue
        lines.append(line)
    text = re.sub(r"#ifdef __cplusplus\nextern \"C\"\n#endif\n", "", "\n".join(lines))
    code = _HEADER.format(kernels_h="mcunet_kernels.h") + _drop_unused_locals(text.strip()) + "\n"
    for name in no_preschedule:
        code = re.sub(rf"^(int32_t {name}\([^)]*\) \{{)$", r"MCUNET_NO_PRESCHEDULE\n\1", code, flags=re.M)
    prototypes = {name: re.search(rf"^int32_t {name}\([^)]*\)", code, flags=re.M).group(0) for name in lowered}
    return code, prototypes


# ---- kernels ----------------------------------------------------------------------------------
def _table_add(rng):
    """An ADD whose input 1 has the larger scale (TFLite's multiplier 2^30, shift 0): input 2 is a table lookup."""
    op, _ = add_case(rng, (1, 6, 5, 12))
    op = dataclasses.replace(op, in1_multiplier=1 << 30, in1_shift=0)
    assert add_rescale_table(op) is not None
    return op


def _plain_ops(rng) -> dict:
    sm = prepare_softmax(0.05)
    dw3 = conv_case(rng, 8, 9, 6, 6, 3, 1, depthwise=True)[0]
    dw3s2 = conv_case(rng, 9, 8, 5, 5, 3, 2, depthwise=True)[0]
    dw5 = conv_case(rng, 7, 7, 4, 4, 5, 1, depthwise=True)[0]
    dw7s2 = conv_case(rng, 8, 7, 2, 2, 7, 2, depthwise=True)[0]
    return {
        "dw_k3_s1": dw3,
        "dw_k3_s2": dw3s2,
        "dw_k5_s1": dw5,
        "dw_k7_s2": dw7s2,
        "dw_k3_s1_inplace": (dw3, INPLACE),
        "dw_k3_s2_inplace": (dw3s2, INPLACE),
        "dw_k5_s1_inplace": (dw5, INPLACE),
        "dw_k3_general": (dw3, KernelChoice()),
        "conv_k3_s2": conv_case(rng, 7, 6, 3, 5, 3, 2)[0],
        "conv_k1": conv_case(rng, 5, 4, 7, 6, 1, 1)[0],
        "dense": dense_case(rng, 21, 6)[0],
        "add": add_case(rng, (1, 5, 6, 7))[0],
        "add_table": _table_add(rng),
        "avgpool": pool_case(rng, 8, 8, 5, 2, 2, "avg")[0],
        "maxpool_pad": pool_case(rng, 9, 7, 3, 3, 2, "max", pad=1)[0],
        "mean": mean_case(rng, 7, 6, 9)[0],
        "mean_lanes": mean_case(rng, 5, 5, 16)[0],
        "pad": pad_case(rng, 5, 4, 3, ((0, 0), (1, 2), (2, 0), (0, 0)))[0],
        "reduce_sum": reduce_case(rng, "sum", (2, 3, 4, 2), (1, 2), False)[0],
        "reduce_mean_all": reduce_case(rng, "mean", (1, 3, 4, 5), (0, 1, 2, 3), False)[0],
        "prelu": prelu_case(rng, (1, 5, 5, 4), (1, 1, 4))[0],
        "resize_bilinear": ResizeBilinear((1, 3, 4, 5), (1, 7, 9, 5)),
        "batch_matmul": batch_matmul_case(rng, (2, 3, 4), (1, 6, 4), adj_y=True)[0],
        "softmax": Softmax((1, 10), (1, 10), input_multiplier=sm.input_multiplier,
                           input_left_shift=sm.input_left_shift, diff_min=sm.diff_min),
    }


def _simd_ops(rng) -> dict:
    return {
        "simd_k1": conv_case(rng, 6, 6, 8, 12, 1, 1)[0],
        "simd_k1_odd": conv_case(rng, 5, 3, 13, 9, 1, 1)[0],
        "simd_k3": conv_case(rng, 5, 5, 2, 4, 3, 1)[0],
        "simd_k3_s2": conv_case(rng, 5, 5, 3, 4, 3, 2)[0],
        "simd_k5": conv_case(rng, 5, 5, 3, 2, 5, 1)[0],
        "simd_dense": dense_case(rng, 37, 11)[0],
    }


#: the fast requantisation (the constants of ``opcases`` allow it), in place or not
FAST = KernelChoice(fast_requant=True)
INPLACE = FAST.with_(inplace=True)


def _choices(ops: dict) -> dict[str, tuple]:
    """name -> (op, choice): an op alone takes the fast requantisation."""
    return {name: case if isinstance(case, tuple) else (case, FAST) for name, case in ops.items()}


def _kernel_sets() -> dict[str, tuple[str | None, dict[str, tirx.PrimFunc]]]:
    rng = np.random.default_rng(2024)
    plain_cases = _choices(_plain_ops(rng))
    plain = {name: build_kernel(op, choice) for name, (op, choice) in plain_cases.items()}
    simd_ops = _simd_ops(rng)
    simd_cases = {name: (op, FAST.with_(simd=SimdConfig(4, 2) if not isinstance(op, Dense) else SimdConfig(1, 4)))
                  for name, op in simd_ops.items()}
    simd_cases["simd_k1_pixels1"] = (simd_ops["simd_k1"], FAST.with_(simd=SimdConfig(pixels=1, channels=4)))
    simd = {name: build_kernel(op, choice) for name, (op, choice) in simd_cases.items()}
    shared = {f"shared_{name}": build_kernel(op, s) for name, (op, choice) in {**simd_cases, **plain_cases}.items()
              if (s := shared_choice(op, choice)) is not None}
    helium = {f"mve_{name}": build_kernel(op, FAST.with_(simd=cfg)) for name, op in simd_ops.items()
              if (cfg := helium_config(op)) is not None}
    assert len(shared) >= 2 and len(helium) >= 2
    return {
        "cortex-m7": ("cortex-m7", {**plain, **simd, **shared}),
        "host": (None, plain),
        "cortex-m55": ("cortex-m55", helium),
    }


KERNEL_SETS = _kernel_sets()


@pytest.mark.parametrize("label", list(KERNEL_SETS))
def test_rendered_c_is_tvm_c_with_the_old_text_edits(label: str) -> None:
    mcpu, kernels = KERNEL_SETS[label]
    target = tvm_target(mcpu)
    unique, _ = deduplicate(kernels)
    no_preschedule = {name for name, func in unique.items() if NO_PRESCHEDULE in func.attrs}
    assert no_preschedule or label == "cortex-m55"
    expected, prototypes = _tvm_source(lower_kernels(unique, target)[0], target, no_preschedule)
    got = kernels_to_c(kernels, target)
    assert got.source == expected
    assert {name: got.prototypes[name] for name in unique} == prototypes


def test_unused_bindings_would_be_unused_locals() -> None:
    """The old text edit had work to do: RemoveUnusedBinds deletes bindings of real kernels."""
    mcpu, kernels = KERNEL_SETS["cortex-m7"]
    lowered, _ = lower_kernels(deduplicate(kernels)[0], tvm_target(mcpu))
    assert any(not remove_unused_binds(f).same_as(f) for f in lowered.values())


# ---- RemoveUnusedBinds on hand-built TIR ------------------------------------------------------
def _i32(name: str) -> tvm.ir.Var:
    return tvm.ir.Var(name, "int32")


def _func(*stmts: tirx.Stmt) -> tirx.PrimFunc:
    """``int32 f(int32* out_ptr)``: ``stmts``, then ``return 0``."""
    out = tvm.ir.Var("out_ptr", tvm.ir.PointerType(tvm.ir.PrimType("int32")))
    body = tirx.SeqStmt([*stmts, tirx.Return(tirx.IntImm("int32", 0))])
    return tirx.PrimFunc([out], body, tvm.ir.PrimType("int32"))


def _binds(func: tirx.PrimFunc) -> list[str]:
    return [s.var.name for s in func.body.seq if isinstance(s, tirx.Bind)]


def _use(x: tvm.ir.Expr) -> tirx.Stmt:
    """``mcunet_ssat8(x);``: a statement that reads ``x``."""
    return tirx.Evaluate(tirx.call_extern("int32", "mcunet_ssat8", x))


def test_an_unused_pure_binding_is_removed() -> None:
    a, b = _i32("a"), _i32("b")
    func = _func(tirx.Bind(a, tirx.IntImm("int32", 3)), tirx.Bind(b, a * 2 + 1), _use(a))
    assert _binds(remove_unused_binds(func)) == ["a"]


def test_a_chain_of_unused_bindings_is_removed() -> None:
    a, b, c = _i32("a"), _i32("b"), _i32("c")
    func = _func(tirx.Bind(a, tirx.IntImm("int32", 3)), tirx.Bind(b, a + 1), tirx.Bind(c, b * 2),
                    _use(tirx.IntImm("int32", 0)))
    assert _binds(remove_unused_binds(func)) == []


def test_a_binding_with_an_extern_call_is_kept() -> None:
    a, b = _i32("a"), _i32("b")
    func = _func(tirx.Bind(a, tirx.call_extern("int32", "mcunet_ssat8", tirx.IntImm("int32", 300))),
                    tirx.Bind(b, tirx.call_pure_extern("int32", "mcunet_sxtb16", tirx.IntImm("int32", 7))))
    assert _binds(remove_unused_binds(func)) == ["a", "b"]


def test_a_used_binding_is_kept_and_the_pass_form_agrees() -> None:
    a, b = _i32("a"), _i32("b")
    func = _func(tirx.Bind(a, tirx.IntImm("int32", 3)), tirx.Bind(b, tirx.Max(a, 5)), _use(b))
    assert remove_unused_binds(func).same_as(func)
    loop_var, unused = _i32("i"), _i32("unused")
    loop = tirx.For(loop_var, tirx.IntImm("int32", 0), tirx.IntImm("int32", 4), tirx.ForKind.SERIAL,
                    tirx.SeqStmt([tirx.Bind(unused, loop_var * 3), _use(loop_var)]))
    func = _func(loop)
    mod = RemoveUnusedBinds()(tvm.IRModule({"f": func}))
    body = mod["f"].body.seq[0].body
    assert isinstance(body, tirx.Evaluate)  # the loop body without its binding


# ---- the renderer -----------------------------------------------------------------------------
def test_rendered_function_of_hand_built_tir() -> None:
    a, b = _i32("v"), _i32("v")
    func = _func(tirx.Bind(a, tirx.IntImm("int32", 3)), tirx.Bind(b, tirx.Max(a * 2, -100)), _use(b))
    assert c_render.render_function("f", func) == (
        "int32_t f(int32_t* out_ptr) {\n"
        "  (void)out_ptr;\n"  # unused (TVM prints nothing, and -Wextra -Werror fails)
        "  int32_t v = 3;\n"
        "  int32_t v_ = v * 2;\n"
        "  int32_t v_1 = ((v_) > (-100) ? (v_) : (-100));\n"
        "  mcunet_ssat8(v_1);\n"
        "  return 0;\n"
        "}\n"
    )
    assert c_render.render_prototype("f", func) == "int32_t f(int32_t* out_ptr)"


def test_name_supply_is_tvms() -> None:
    ours, theirs = c_render.NameSupply(), UniqueNameSupply()
    for hint in ["v", "v", "v_1", "v", "v_", "v_", "cse_v1", "a.b", "v"]:
        assert ours.fresh(hint) == theirs.fresh_name(hint)


def test_unknown_nodes_raise() -> None:
    x = tvm.ir.Var("x", "int32x4")
    with_ramp = _func(tirx.Bind(x, tirx.Ramp(tirx.IntImm("int32", 0), tirx.IntImm("int32", 1), 4)))
    with pytest.raises(NotImplementedError, match="Ramp"):
        c_render.render_function("f", with_ramp)
    check = tirx.AssertStmt(tirx.IntImm("bool", 1), tvm.ir.StringImm("ValueError"))  # TVM's wrapper: (condition, kind)
    with_assert = _func(check)
    with pytest.raises(NotImplementedError, match="AssertStmt"):
        c_render.render_function("f", with_assert)
    undeclared = _func(tirx.Evaluate(tirx.call_extern("int32", "memset", tirx.IntImm("int32", 0))))
    with pytest.raises(NotImplementedError, match="memset"):  # the C would have no declaration of it
        c_render.render_function("f", undeclared)
