"""Unit tests of the kernel generators' parts, each alone (no compiler, no emulator): the depthwise
row plans and interior ranges, the SIMD weight layouts, records and staging slots, the schedule
predicates, and the parameters a SIMD kernel declares against what the packing produces."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from mcunet_tvm.kernels import KernelChoice, kernel_consts, simd
from mcunet_tvm.kernels.common import ScalarArgs
from mcunet_tvm.kernels.depthwise.channel import Geometry as DwGeometry
from mcunet_tvm.kernels.depthwise.plan import (
    compact_choice,
    interior,
    one_pair_per_iteration,
    row_buffer_shape,
    row_plan,
    unrolls_small_image,
)
from mcunet_tvm.kernels.requant import pack_fast_requant
from mcunet_tvm.kernels.simd import SimdConfig
from mcunet_tvm.kernels.simd.context import declare, lanes_offset
from mcunet_tvm.kernels.simd.geometry import Geometry
from mcunet_tvm.kernels.simd.layout import record_word, staged_slot
from mcunet_tvm.ops import Conv2D, Dense

from opcases import conv_case, dense_case

# --- depthwise: row plans, interior ranges, compact policy ---------------------------------------


def _plan_dot(plan, ring: np.ndarray, weights: np.ndarray, lane_bytes: int) -> int:
    """What the row kernel computes from a plan: per item, the word's lane register (SXTB16 of
    bytes 0/2 or, rotated, 1/3 for an int8 ring; the two elements of an int16 word), bottom half
    times the ``lo`` weight, top half times the ``hi`` weight."""
    total = 0
    for word, lane, lo, hi in plan:
        if lane_bytes == 1:
            bottom, top = ring[4 * word + lane], ring[4 * word + lane + 2]
        else:
            assert lane == 0
            bottom, top = ring[2 * word], ring[2 * word + 1]
        total += (int(bottom) * int(weights[lo]) if lo >= 0 else 0) + (int(top) * int(weights[hi]) if hi >= 0 else 0)
    return total


@pytest.mark.parametrize("lane_bytes", [1, 2])
def test_row_plan_takes_each_tap_once_from_its_element(lane_bytes: int) -> None:
    rng = np.random.default_rng(1)
    for kw, first in itertools.product(range(1, 8), range(0, 6)):
        plan = row_plan(kw, first, lane_bytes)
        taps = [t for _, _, lo, hi in plan for t in (lo, hi) if t >= 0]
        assert sorted(taps) == list(range(kw)), (kw, first)  # every tap exactly once
        slots = [(word, lane) for word, lane, _, _ in plan]
        assert len(set(slots)) == len(slots) and slots == sorted(slots)  # one item per lane register
        assert all(lane in ((0, 1) if lane_bytes == 1 else (0,)) for _, lane, _, _ in plan)
        ring = rng.integers(-128, 128, 64)
        weights = rng.integers(-255, 256, kw)
        assert _plan_dot(plan, ring, weights, lane_bytes) == int(ring[first:first + kw] @ weights), (kw, first)


def test_row_plan_pairs_neighbouring_taps_in_an_int16_ring() -> None:
    assert row_plan(3, 0, 2) == [(0, 0, 0, 1), (1, 0, 2, -1)]
    assert row_plan(3, 1, 2) == [(0, 0, -1, 0), (1, 0, 1, 2)]
    assert row_plan(3, 0, 1) == [(0, 0, 0, 2), (0, 1, 1, -1)]  # int8: taps (t, t + 2) after SXTB16


def test_interior_agrees_with_brute_force() -> None:
    for n_out, stride, dil, k, pad, size in itertools.product(range(1, 9), (1, 2, 3), (1, 2), (1, 3, 5),
                                                              range(0, 4), range(1, 12)):
        inside = [o for o in range(n_out) if all(0 <= o * stride - pad + t * dil < size for t in range(k))]
        lo, hi = interior(n_out, stride, dil, k, pad, size)
        if not inside:
            assert (lo, hi) == (0, 0)
            continue
        assert list(range(lo, hi)) == inside, (n_out, stride, dil, k, pad, size)


def _dw(h: int, w: int, k: int, s: int = 1, **kw) -> Conv2D:
    rng = np.random.default_rng(h * 100 + w)
    op, _ = conv_case(rng, h, w, 4, 4, k, s, depthwise=True)
    return dataclasses.replace(op, **kw)


def test_compact_policy() -> None:
    ring3, ring5, small = _dw(12, 12, 3), _dw(12, 12, 5), _dw(4, 4, 3)
    plain = KernelChoice()
    assert row_buffer_shape(ring3, plain) and row_buffer_shape(ring5, plain) and unrolls_small_image(small, plain)
    assert not one_pair_per_iteration(ring3, False) and one_pair_per_iteration(ring3, True)
    assert one_pair_per_iteration(ring5, False)
    assert compact_choice(ring3, plain) == plain.with_(compact=True)
    assert compact_choice(ring5, plain) is None  # already one pair per iteration
    assert compact_choice(small, plain) == plain.with_(unroll_small_image=False, compact=True)
    assert compact_choice(ring3, plain.with_(compact=True)) is None  # already compact
    tap = _dw(12, 12, 3, 2)  # 3x3 stride 2: tap by tap, no compact form
    assert not row_buffer_shape(tap, plain) and compact_choice(tap, plain) is None


def test_depthwise_geometry_indexes_the_window_of_the_buffer() -> None:
    op = dataclasses.replace(_dw(5, 6, 3), windows=((2, 1, 9, 10),))
    g = DwGeometry.of(op)
    assert (g.h, g.w, g.c, g.bw, g.buf_elems) == (5, 6, 4, 10, 9 * 10 * 4)
    for r, q, k in itertools.product(range(5), range(6), range(4)):
        assert g.x_index(r, q, k) == np.ravel_multi_index((0, r + 2, q + 1, k), (1, 9, 10, 4))


# --- SIMD: weight layouts, records, staging slots -------------------------------------------------


def _lanes(word: np.ndarray, rotated: bool) -> tuple[int, int]:
    """SXTB16 (bytes 0, 2) or SXTB16 ROR 8 (bytes 1, 3) of a 4-byte word."""
    return (int(word[1]), int(word[3])) if rotated else (int(word[0]), int(word[2]))


def test_pair_weights_round_trip_and_lane_order() -> None:
    rng = np.random.default_rng(2)
    for oc, kh, kw, c in [(1, 1, 1, 1), (2, 1, 1, 4), (3, 3, 3, 3), (5, 2, 5, 7), (8, 1, 1, 24), (7, 3, 1, 2)]:
        w = rng.integers(-128, 128, (oc, kh, kw, c), dtype=np.int8)
        words = -(-(kw * c) // 4)
        paired = simd.pair_weights(w)
        assert paired.dtype == np.int8 and paired.size == (oc + oc % 2) * kh * words * 4
        # [pair, row, word, half (byte parity), lane (byte // 2), member]
        lanes = paired.reshape(-1, kh, words, 2, 2, 2)
        padded = np.zeros((oc + oc % 2, kh, words * 4), np.int8)
        padded[:oc, :, : kw * c] = w.reshape(oc, kh, -1)
        back = lanes.transpose(0, 5, 1, 2, 4, 3).reshape(oc + oc % 2, kh, words * 4)
        assert np.array_equal(back, padded)
        # what a word step computes: SXTB16 of a pair's word gives the even channel's lanes,
        # rotated the odd one's, against staged input lanes (bytes 4q + h, 4q + h + 2)
        x = rng.integers(-128, 128, (kh, words * 4))
        x[:, kw * c:] = rng.integers(-128, 128, (kh, words * 4 - kw * c))  # don't-cares: their weights are 0
        for ch in range(oc):
            total = 0
            for ki, q, h in itertools.product(range(kh), range(words), range(2)):
                wl = _lanes(lanes[ch // 2, ki, q, h].reshape(-1), rotated=bool(ch % 2))
                total += x[ki, 4 * q + h] * wl[0] + x[ki, 4 * q + h + 2] * wl[1]
            assert total == int((x[:, : kw * c] * w[ch].reshape(kh, -1)).sum())


@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("doubled", [False, True])
def test_records_hold_what_the_kernel_reads(group: int, doubled: bool) -> None:
    rng = np.random.default_rng(3 + group)
    for oc, kh, kw, c in [(1, 1, 1, 3), (4, 1, 1, 8), (5, 3, 3, 3), (9, 2, 2, 5)]:
        w = rng.integers(-128, 128, (oc, kh, kw, c), dtype=np.int8)
        bias = rng.integers(-9999, 9999, oc).astype(np.int32)
        mult = rng.integers(1 << 30, (1 << 31) - 1, oc, dtype=np.int64).astype(np.int32)
        rq = pack_fast_requant(rng.integers(-12, 0, oc).astype(np.int32), 5)
        flat = simd.pack_records(w, bias, mult, rq, doubled, group)
        weight_words = kh * -(-(kw * c) // 4) * 2
        records = -(-oc // (2 * group))
        assert flat.dtype == np.int32 and flat.size == records * simd.record_words(weight_words, group)
        for o in range(oc):
            o0, t = o - o % (2 * group), o % (2 * group)
            at = [int(record_word(o0, t, what, group, weight_words)) for what in range(4)]
            assert flat[at[0]] == bias[o] * (2 if doubled else 1)
            assert flat[at[1]] == mult[o] and (flat[at[2]], flat[at[3]]) == tuple(rq[2 * o: 2 * o + 2])
        # the weights: per word position, the record's pairs side by side
        pairs = simd.pair_weights(w).view("<i4").reshape(-1, weight_words)
        rec = flat.reshape(records, -1)
        for r, pos, j in itertools.product(range(records), range(weight_words), range(group)):
            pair = r * group + j
            assert rec[r, pos * group + j] == (pairs[pair, pos] if pair < len(pairs) else 0)


def test_staged_slots_interleave_a_tiles_pixels() -> None:
    for tp, kh, row_words in itertools.product((1, 2, 4), (1, 3), (1, 2, 5)):
        slots = {(p, ki, q, h): staged_slot(p, ki, q, h, row_words, tp)
                 for p, ki, q, h in itertools.product(range(tp), range(kh), range(row_words), range(2))}
        assert sorted(slots.values()) == list(range(tp * kh * row_words * 2))  # a bijection onto the scratch
        for (p, ki, q, h), s in slots.items():
            if p + 1 < tp:  # the tile's pixels' words adjacent (LDRD of two pixels)
                assert slots[(p + 1, ki, q, h)] == s + 1
            if h == 0:  # then the other lanes of the same word, for every pixel
                assert slots[(p, ki, q, 1)] == s + tp


def test_lanes_offset_is_minus_zp_in_both_halves() -> None:
    for zp in range(-128, 128):
        v = lanes_offset(zp) & 0xFFFFFFFF
        assert -(1 << 31) <= lanes_offset(zp) < 1 << 31
        for half in (v & 0xFFFF, v >> 16):
            assert half - (1 << 16 if half & 0x8000 else 0) == -zp


# --- SIMD: geometry, schedule predicates, declared parameters -------------------------------------


def test_geometry_flattens_independent_pixels() -> None:
    pointwise = Conv2D((1, 5, 6, 8), (1, 5, 6, 3))
    g = Geometry.of(pointwise)
    assert (g.h, g.w, g.oh, g.ow, g.kh, g.buf_w, g.in_bytes) == (1, 30, 1, 30, 1, 30, 240)
    windowed = dataclasses.replace(pointwise, windows=((1, 2, 8, 9),))
    g = Geometry.of(windowed)  # a window is not flat: rows of the buffer
    assert (g.h, g.w, g.buf_w, g.r0, g.c0, g.in_bytes) == (5, 6, 9, 1, 2, 8 * 9 * 8)
    g = Geometry.of(Dense((3, 20), (3, 7)))
    assert (g.h, g.w, g.c, g.ow, g.oc) == (1, 3, 20, 3, 7)


def test_config_space_predicates() -> None:
    rng = np.random.default_rng(4)
    space = simd.CONFIG_SPACE
    assert all(c.pixels * c.channels <= 8 for c in space) and len(set(space)) == len(space)
    pointwise, _ = conv_case(rng, 6, 6, 8, 16, 1, 1)
    conv3, _ = conv_case(rng, 6, 6, 8, 16, 3, 1)
    dense, _ = dense_case(rng, 40, 12)
    assert all(c.order == "pixels" for c in simd.config_space(pointwise))  # output may overlap the input
    assert {c.order for c in simd.config_space(conv3)} == {"pixels", "channels"}
    assert simd.config_space(dense) and all(c.pixels == 1 for c in simd.config_space(dense))
    for op in (pointwise, conv3, dense):
        assert simd.simd_supported(op) and simd.default_config(op) in simd.config_space(op)
    assert not simd.simd_supported(dataclasses.replace(conv3, depthwise=True))
    assert not simd.simd_supported(dataclasses.replace(conv3, dilation=(2, 2)))
    assert simd.helium_config(conv3) is None and simd.helium_config(pointwise).helium
    for base in (pointwise, conv3, dense):
        for fast in (False, True):
            op = base
            for cfg in [*simd.config_space(op), *(dataclasses.replace(c, shared=True) for c in simd.config_space(op))]:
                staged = simd.staged_input_bytes(op, cfg)
                assert (staged > 0) == (cfg.order == "pixels" and -(-op.out_shape[-1] // cfg.channels) >= 3)
                if staged:
                    rows, words = simd.staged_rows(op)
                    assert staged == cfg.pixels * rows * words * 8
                assert simd.doubled_input(op, cfg, fast) <= (bool(staged) and fast and not cfg.shared)
                assert simd.paired_weights(op, cfg) == (bool(staged) and cfg.channels % 2 == 0)
                assert simd.channel_records(op, cfg, fast) == (simd.paired_weights(op, cfg) and fast and not cfg.shared)
                assert simd.shape_generic(op, cfg) == (cfg.shared and isinstance(op, Conv2D) and op.kernel == (1, 1))
                assert simd.record_pairs(cfg) == (2 if cfg.channels >= 4 else 1)


def test_flat_window_packs_short_kernel_rows() -> None:
    stem = Conv2D((1, 8, 8, 3), (1, 8, 8, 8), kernel=(3, 3), padding=(1, 1, 1, 1))
    assert simd.flat_window(stem) and simd.staged_rows(stem) == (1, 7)  # 27 bytes: 7 words instead of 9
    wide = dataclasses.replace(stem, in_shape=(1, 8, 8, 4))
    assert not simd.flat_window(wide) and simd.staged_rows(wide) == (3, 3)  # rows of whole words
    assert not simd.flat_window(Conv2D((1, 8, 8, 3), (1, 8, 8, 8)))  # one kernel row


def _declared(op, cfg: SimdConfig, generic: bool = False, fast: bool = False):
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            ctx = declare(op, Geometry.of(op), cfg, fast, generic, ScalarArgs(generic))
            T.evaluate(0)
    return ctx, [p.name for p in builder.get().params]


def test_declared_buffers_match_the_packed_constants_and_scratch() -> None:
    rng = np.random.default_rng(5)
    for base, consts in [conv_case(rng, 6, 5, 8, 12, 1, 1), conv_case(rng, 7, 7, 3, 9, 3, 2),
                         conv_case(rng, 6, 6, 5, 7, 3, 1), dense_case(rng, 37, 10)]:
        for fast in (False, True):
            op = base
            for cfg in simd.config_space(op):
                ctx, names = _declared(op, cfg, fast=fast)
                packed = kernel_consts(op, consts, KernelChoice(simd=cfg, fast_requant=fast))
                assert [n.split("_", 1)[0] for n in names] == (
                    ["p0", "p1"] + ([] if ctx.records else ["p2", "p3", "p4"])
                    + (["p8"] if ctx.staged is not None else []) + ["p9"])
                assert ctx.records == simd.channel_records(op, cfg, fast) and len(packed) == (1 if ctx.records else 4)
                assert int(ctx.wt.shape[0]) == packed[0][1].size, (op, cfg)  # weights / records
                staged = simd.staged_input_bytes(op, cfg)
                assert (ctx.staged is None and not staged) or int(ctx.staged.shape[0]) * 4 == staged
                assert int(ctx.out.shape[0]) == int(np.prod(op.out_shape))


def test_shape_generic_kernels_take_their_sizes_as_scalars() -> None:
    rng = np.random.default_rng(6)
    op, _ = conv_case(rng, 4, 4, 32, 16, 1, 1)
    op = dataclasses.replace(op, act_min=-100)
    cfg = SimdConfig(4, 2, shared=True)
    assert simd.shape_generic(op, cfg)
    ctx, names = _declared(op, cfg, generic=True)
    assert names[:6] == ["p10_pixels", "p11_channels", "p12_cin", "p13_x_zp", "p14_x_offset", "p15_act_min"]
    assert not isinstance(ctx.g.oc, int) and ctx.cursor is not None and not ctx.records
