"""The im2col staging of a pixel tile's input windows (pixel order, :func:`~.schedule.staged_input_bytes`).

Every channel tile of a pixel tile reads the same input windows, so they are
widened once into the kernel's scratch: per pixel and segment (a kernel row,
or the whole window where :func:`~.schedule.flat_window`), ``row_words``
pairs of int32 words, lanes 0/2 and 1/3 of each input word as halfwords with
the zero point subtracted (doubled where :func:`~.schedule.doubled_input`),
zeros for the padding and past the segment. The pixels of the tile
interleave word by word (:func:`~.layout.staged_slot`), so a word step reads
consecutive words. Windows inside the image take whole-word loads; windows
across the border are staged byte by byte, each byte checked.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..common import pack_halves
from .config import UNROLL_WORDS
from .context import SimdContext, call, i32
from .geometry import Expr, Index


def stage_tile(ctx: SimdContext, i: Index, j0: Index, tp: int) -> None:
    """Widen the tile's input windows once (im2col), for all its channel tiles."""
    g = ctx.g
    if ctx.flat:
        stage_flat(ctx, i, j0, tp)
        return
    if not ctx.padded and g.kh == 1:  # every window inside the image: all pixels in one loop
        stage_direct(ctx, i * g.sh, [(p, (j0 + p) * g.sw) for p in range(tp)], 0)
        return
    for p in range(tp):
        iw = (j0 + p) * g.sw - g.pl
        if g.kh == 1:
            stage_row(ctx, i * g.sh - g.pt, iw, p, 0)
            continue
        with T.serial(0, g.kh) as ki:
            stage_row(ctx, i * g.sh - g.pt + ki, iw, p, ki)


def _stage_words(ctx: SimdContext, bases: list, ki: Index, q: Index) -> None:
    """Whole word q of kernel row ki of each window ``(pixel, byte offset)``, widened."""
    for p, base in bases:
        v = T.bind(call("mcunet_read_s8x4", T.address_of(ctx.x[base + q * 4])))
        lo, hi = ctx.widen_input(v)
        if ctx.doubled:
            lo, hi = T.bind(lo), T.bind(hi)
            lo, hi = call("mcunet_sadd16", lo, lo), call("mcunet_sadd16", hi, hi)
        T.buffer_store(ctx.staged, lo, [ctx.slot(p, ki, q, 0)])
        T.buffer_store(ctx.staged, hi, [ctx.slot(p, ki, q, 1)])


def stage_direct(ctx: SimdContext, ih: Index, windows: list, ki: Index) -> None:
    """Widen kernel row ``ki`` of the windows ``(pixel, column)`` (inside the image):
    whole words of all of them in one loop, then each partial word."""
    seg, x, staged = ctx.seg, ctx.x, ctx.staged
    bases = [(p, ctx.x_index(ih, iw)) for p, iw in windows]
    if isinstance(seg, int) and seg // 4 <= UNROLL_WORDS:
        for q in range(seg // 4):
            _stage_words(ctx, bases, ki, q)
    else:
        with T.serial(0, seg // 4) as q:
            _stage_words(ctx, bases, ki, q)
    rest = ctx.tail
    for p, base in bases if rest else ():
        v = [ctx.scaled(x[base + seg - rest + b].astype("int32") - ctx.zp) for b in range(rest)]
        T.buffer_store(staged, pack_halves(v[0], v[2] if rest == 3 else None), [ctx.slot(p, ki, seg // 4, 0)])
        T.buffer_store(staged, pack_halves(v[1]) if rest >= 2 else i32(0), [ctx.slot(p, ki, seg // 4, 1)])


def _stage_bytewise(ctx: SimdContext, ih: Index, iw: Index, p: Index, ki: Index) -> None:
    """Kernel row ``ki`` of a window across the left or right border: byte by byte, each checked."""
    g, x, staged = ctx.g, ctx.x, ctx.staged
    with T.serial(0, ctx.row_words) as q:
        v = []
        for b in range(4):
            pos = q * 4 + b
            col = iw + tirx.floordiv(pos, g.c)
            valid = tirx.all(pos < ctx.seg, col >= 0, col < g.w)
            load = ctx.scaled(x[ctx.x_index(ih, col) + tirx.floormod(pos, g.c)].astype("int32") - ctx.zp)
            v.append(T.bind(tirx.if_then_else(valid, load, i32(0))))
        T.buffer_store(staged, pack_halves(v[0], v[2]), [ctx.slot(p, ki, q, 0)])
        T.buffer_store(staged, pack_halves(v[1], v[3]), [ctx.slot(p, ki, q, 1)])


def stage_row(ctx: SimdContext, ih: Index, iw: Index, p: Index, ki: Index) -> None:
    """Widen kernel row ``ki`` of pixel ``p``'s window (it may cross the border)."""
    g = ctx.g
    if not ctx.padded:
        stage_direct(ctx, ih, [(p, iw)], ki)
        return
    with T.If(tirx.all(ih >= 0, ih < g.h)):
        with T.Then():
            with T.If(tirx.all(iw >= 0, iw + g.kw <= g.w)):
                with T.Then():
                    stage_direct(ctx, ih, [(p, iw)], ki)
                with T.Else():
                    _stage_bytewise(ctx, ih, iw, p, ki)
        with T.Else():  # a padding row
            with T.serial(0, ctx.row_words) as q:
                T.buffer_store(ctx.staged, i32(0), [ctx.slot(p, ki, q, 0)])
                T.buffer_store(ctx.staged, i32(0), [ctx.slot(p, ki, q, 1)])


def stage_flat(ctx: SimdContext, i: Index, j0: Index, tp: int) -> None:
    """Each pixel's whole window as one segment (:func:`~.schedule.flat_window`): inside the image
    word by word, spliced from the kernel rows (:func:`window_word`); a window across the
    border byte by byte, every byte checked."""
    g = ctx.g
    for p in range(tp):
        ih0, iw0 = i * g.sh - g.pt, (j0 + p) * g.sw - g.pl
        if not ctx.padded:
            gather_window(ctx, p, ih0, iw0, False)
            continue
        with T.If(tirx.all(ih0 >= 0, ih0 + g.kh <= g.h, iw0 >= 0, iw0 + g.kw <= g.w)):
            with T.Then():
                gather_window(ctx, p, ih0, iw0, False)
            with T.Else():
                gather_window(ctx, p, ih0, iw0, True)


def _window_element(ctx: SimdContext, ih0: Index, iw0: Index, e: int, checked: bool) -> Expr:
    """Element e of the window at (ih0, iw0) (0 past it); ``checked``: ``- zp``, 0 outside the image."""
    g = ctx.g
    if e >= ctx.seg:
        return i32(0)
    ki, rest = divmod(e, g.kw * g.c)
    ih, iw = ih0 + ki, iw0 + rest // g.c
    v = ctx.x[ctx.x_index(ih, iw) + rest % g.c].astype("int32")
    if not checked:
        return v
    return tirx.if_then_else(tirx.all(ih >= 0, ih < g.h, iw >= 0, iw < g.w), v - ctx.zp, i32(0))


def gather_window(ctx: SimdContext, p: int, ih0: Index, iw0: Index, checked: bool) -> None:
    """Pixel p's window from (ih0, iw0) into its staged words; ``checked``: it crosses the border."""
    g = ctx.g
    row_len = g.kw * g.c
    if not checked and row_len >= 4:  # inside: whole words of the kernel rows, spliced
        for q in range(ctx.row_words):
            lo, hi = ctx.widen_input(T.bind(window_word(ctx, ih0, iw0, q)))
            for h, lanes in enumerate((lo, hi)):
                lanes = T.bind(lanes)
                T.buffer_store(ctx.staged, call("mcunet_sadd16", lanes, lanes) if ctx.doubled else lanes,
                               [ctx.slot(p, 0, q, h)])
        return
    for q in range(ctx.row_words):
        for h in range(2):
            word = T.bind(pack_halves(_window_element(ctx, ih0, iw0, 4 * q + h, checked),
                                      _window_element(ctx, ih0, iw0, 4 * q + h + 2, checked)))
            if not checked:  # the zero point of the (inside) bytes, both lanes at once
                word = T.bind(call("mcunet_sadd16", word, offset_of_lanes(ctx, 4 * q + h)))
            if ctx.doubled:
                word = call("mcunet_sadd16", word, word)
            T.buffer_store(ctx.staged, word, [ctx.slot(p, 0, q, h)])


def window_word(ctx: SimdContext, ih0: Index, iw0: Index, q: int) -> Expr:
    """Bytes 4q .. 4q + 3 of an inside window (kernel rows of at least 4 bytes, one after
    the other) as one word: a load, or two spliced (the end of one row, a load ending
    there shifted down, and the start of the next); bytes past the window are don't-cares
    (their weights are 0)."""
    g = ctx.g
    row_len = g.kw * g.c

    def load(ki: int, b: int) -> Expr:
        return call("mcunet_read_s8x4", T.address_of(ctx.x[ctx.x_index(ih0 + ki, iw0) + b]))

    ki, b = divmod(4 * q, row_len)
    if b + 4 <= row_len:
        return load(ki, b)
    first = row_len - b  # bytes left in row ki
    tail_part = tirx.Cast("uint32", load(ki, row_len - 4)) >> tirx.const(8 * (4 - first), "uint32")
    if ki + 1 >= g.kh:  # the window's last bytes
        return tirx.Cast("int32", tail_part)
    head = tirx.Cast("uint32", load(ki + 1, 0)) << tirx.const(8 * first, "uint32")
    return tirx.Cast("int32", tail_part | head)


def offset_of_lanes(ctx: SimdContext, e: int) -> Expr:
    """``-zp`` in the lanes holding window elements ``e`` and ``e + 2`` (0 past the window)."""
    lo = (-ctx.op.in_zp) & 0xFFFF if e < ctx.seg else 0
    hi = (-ctx.op.in_zp) & 0xFFFF if e + 2 < ctx.seg else 0
    v = (hi << 16) | lo
    return i32(v - (1 << 32) if v & 0x80000000 else v)
