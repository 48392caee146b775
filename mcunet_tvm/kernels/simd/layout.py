"""Memory layouts shared by the compile-time packing and the kernels that read it.

The numpy side packs the weights in channel-pair order (:func:`pair_weights`)
and, with the constants, into channel-pair records (:func:`pack_records`);
the index functions (:func:`record_word`, :func:`staged_slot`) are the
offsets the kernel emitters read those layouts at, and that the im2col
staging writes the widened input at. They take Python ints or TIR
expressions alike, so the tests check them against the numpy packing.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from .geometry import Index

#: int32 words of a channel pair's constants in a record: bias of both channels, their
#: multipliers, then (exponent, rounding) of each (:func:`~.schedule.channel_records`)
RECORD_CONST_WORDS = 8


def pair_weights(weights: np.ndarray) -> np.ndarray:
    """OHWI int8 weights in channel-pair order, each kernel row padded to whole words.

    For channels ``2g, 2g + 1`` and word ``q`` of a kernel row (bytes b0..b3,
    zeros past the row), word A = ``[2g:b0, 2g+1:b0, 2g:b2, 2g+1:b2]`` and word
    B = ``[2g:b1, 2g+1:b1, 2g:b3, 2g+1:b3]`` follow each other: ``SXTB16`` of A
    is channel 2g's half for the staged lanes 0/2 of the input, ``SXTB16 ROR 8``
    channel 2g+1's; B pairs with lanes 1/3. An odd last channel is paired with zeros.
    """
    oc, kh = weights.shape[0], weights.shape[1] if weights.ndim == 4 else 1
    rows = weights.reshape(oc, kh, -1)
    words = -(-rows.shape[2] // 4)
    padded = np.zeros((oc + oc % 2, kh, words * 4), np.int8)
    padded[:oc, :, : rows.shape[2]] = rows
    # [group, pair member, row, word, byte] -> [group, row, word, half (byte parity), lane (byte // 2), member]
    lanes = padded.reshape(-1, 2, kh, words, 2, 2).transpose(0, 2, 3, 5, 4, 1)
    return np.ascontiguousarray(lanes).reshape(-1)


def record_words(weight_words: int, group: int = 1) -> int:
    """int32 words of one record of ``group`` channel pairs whose weights take ``weight_words`` words each."""
    return group * (weight_words + RECORD_CONST_WORDS)


def _per_channel(v: np.ndarray, per: int, oc: int, records: int, group: int) -> np.ndarray:
    """``per`` int64 values per channel, zeros for missing channels, one row per record."""
    out = np.zeros((records * group * 2, per), np.int64)
    out[:oc] = np.asarray(v, np.int64).reshape(oc, per)
    return out.reshape(records, 2 * group * per)


def pack_records(weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, rq: np.ndarray,
                 doubled: bool, group: int = 1) -> np.ndarray:
    """Records (int32) of ``group`` channel pairs for :func:`~.schedule.channel_records` kernels.

    ``rq`` is ``requant.pack_fast_requant``'s (exponent, rounding) per channel;
    ``doubled`` doubles the biases (the kernel accumulates ``2 acc``). Missing
    channels (an odd count, a last partial group) are zeros. A record: the
    group's weight words, pair by pair for each word position, then per
    channel its bias, per channel its multiplier, per channel (exponent, rounding).
    """
    oc = bias.shape[0]
    records = -(-oc // (2 * group))
    pairs = records * group
    words = np.zeros((pairs, pair_weights(weights[:2]).size // 4), np.int32)
    words[: (oc + 1) // 2] = pair_weights(weights).view("<i4").reshape((oc + 1) // 2, -1)
    words = words.reshape(records, group, -1).transpose(0, 2, 1).reshape(records, -1)
    consts = np.concatenate([_per_channel(np.asarray(bias, np.int64) * (2 if doubled else 1), 1, oc, records, group),
                             _per_channel(mult, 1, oc, records, group), _per_channel(rq, 2, oc, records, group)],
                            axis=1)
    return np.ascontiguousarray(np.concatenate([words, consts.astype(np.int32)], axis=1)).reshape(-1)


def record_word(o0: Index, t: int, what: int, group: int, weight_words: int) -> Index:
    """Index (int32 words) of constant ``what`` (0 bias, 1 multiplier, 2 exponent, 3 rounding) of
    channel ``o0 + t`` in the records of :func:`pack_records` (``o0`` a multiple of the record's
    ``2 * group`` channels; ``weight_words`` per channel pair)."""
    rec_words = record_words(weight_words, group)
    local = t % (2 * group)
    at = {0: local, 1: 2 * group + local, 2: 4 * group + 2 * local, 3: 4 * group + 2 * local + 1}[what]
    return (tirx.floordiv(o0, 2 * group) + t // (2 * group)) * rec_words + group * weight_words + at


def staged_slot(p: Index, ki: Index, q: Index, h: Index, row_words: Index, tp_max: int) -> Index:
    """Index (int32 words) of staged word q, lanes h (0: bytes 0/2, 1: bytes 1/3) of kernel row ki
    of pixel p. The pixels of a tile interleave, so one step of the tile reads consecutive words
    (one base, constant offsets; two pixels at a time with LDRD)."""
    return ((ki * row_words + q) * 2 + h) * tp_max + p
