"""Generate the single-op int8 (and 16x8, ``i16_*``) .tflite fixtures for tests/test_tflite_ops_reference.py.

Each fixture is a tiny full-integer model (int8 inputs and outputs unless it keeps float32 edges, seeded
random weights, representative dataset) built with tf.function or Keras and
the TF Lite converter, holding one operator (a few where the converter adds a
QUANTIZE or a reshape). TensorFlow is never needed at test time; run once in
a separate environment:

    python3.11 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow-cpu==2.20.0
    /work/tfvenv/bin/python scripts/make_tflite_op_fixtures.py
    /work/tfvenv/bin/python scripts/make_tflite_op_fixtures.py NAME...   # only these fixtures

Writes tests/fixtures/ops/<name>.tflite and tests/fixtures/ops/MANIFEST.json
(per file: the operators in the model, the fixture's attributes, input and
output shapes, sha256). The script checks that every model holds the operator
it is meant to cover and fails otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ops"
OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


@dataclass
class Fixture:
    name: str
    fn: object  # tf.function, or a Keras model
    inputs: list  # [(shape, lo, hi)]
    expect: list  # operator names that must be in the model
    attrs: dict = field(default_factory=dict)
    convert_opts: dict = field(default_factory=dict)
    mode: str = "int8"  # int8 | int16x8 (int16 activations and edges, int8 weights)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))


def _const(name: str, shape, lo=-1.0, hi=1.0):
    return tf.constant(_rng(name).uniform(lo, hi, shape).astype(np.float32))


def _fn(inputs, body):
    sig = [tf.TensorSpec(shape, tf.float32) for shape, _, _ in inputs]
    return tf.function(body, input_signature=sig)


def unary(name, body, shape=(1, 5, 7, 3), lo=-1.0, hi=1.0, expect=(), **attrs) -> Fixture:
    inputs = [(shape, lo, hi)]
    return Fixture(name, _fn(inputs, body), inputs, list(expect), attrs)


def binary(name, body, shape_a, shape_b, expect, lo=-1.0, hi=1.0, **attrs) -> Fixture:
    inputs = [(shape_a, lo, hi), (shape_b, 2 * lo, 2 * hi)]
    return Fixture(name, _fn(inputs, body), inputs, list(expect), attrs)


def keras_fixture(name, layer, shape, expect, lo=-1.0, hi=1.0, **attrs) -> Fixture:
    inp = tf.keras.Input(shape[1:], batch_size=shape[0])
    return Fixture(name, tf.keras.Model(inp, layer(inp)), [(shape, lo, hi)], list(expect), attrs)


# ---- the fixtures ------------------------------------------------------------------------------

def unary_fixtures() -> list[Fixture]:
    return [
        unary("relu", tf.nn.relu, expect=["RELU"]),
        unary("relu_wide", tf.nn.relu, shape=(2, 3, 11), lo=-6, hi=2, expect=["RELU"]),
        unary("relu6", tf.nn.relu6, lo=-3, hi=9, expect=["RELU6"]),
        unary("leaky_relu", lambda x: tf.nn.leaky_relu(x, alpha=0.2), lo=-4, hi=3, expect=["LEAKY_RELU"],
              alpha=0.2),
        unary("leaky_relu_big_alpha", lambda x: tf.nn.leaky_relu(x, alpha=0.75), shape=(1, 4, 33), lo=-2,
              hi=5, expect=["LEAKY_RELU"], alpha=0.75),
        unary("leaky_relu_negative_alpha", lambda x: tf.nn.leaky_relu(x, alpha=-0.4), shape=(2, 3, 5), lo=-3,
              hi=3, expect=["LEAKY_RELU"], alpha=-0.4),
        unary("hard_swish", lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, shape=(1, 6, 6, 4), lo=-5, hi=5,
              expect=["HARD_SWISH"]),
        unary("hard_swish_narrow", lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, shape=(2, 37), lo=-0.5,
              hi=0.7, expect=["HARD_SWISH"]),
        unary("logistic", tf.math.sigmoid, shape=(1, 4, 5, 6), lo=-8, hi=8, expect=["LOGISTIC"]),
        unary("logistic_narrow", tf.math.sigmoid, shape=(3, 50), lo=-1, hi=2, expect=["LOGISTIC"]),
        unary("tanh", tf.math.tanh, shape=(1, 4, 5, 6), lo=-4, hi=4, expect=["TANH"]),
        unary("tanh_offset", tf.math.tanh, shape=(2, 60), lo=-0.5, hi=2.5, expect=["TANH"]),
        # LOGISTIC's output scale is fixed (1/256), so the converter requantises it to the concatenation's
        # scale with an int8 -> int8 QUANTIZE.
        unary("quantize_requant", lambda x: tf.concat([tf.math.sigmoid(x), x * 2.5], axis=-1), shape=(1, 3, 4, 5),
              lo=-3, hi=3, expect=["QUANTIZE", "CONCATENATION"]),
        keras_fixture("prelu_shared", tf.keras.layers.PReLU(
            alpha_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.8, seed=1), shared_axes=[1, 2]),
            (1, 5, 5, 4), ["PRELU"], lo=-3, hi=3, shared_axes=[1, 2]),
        keras_fixture("prelu_full", tf.keras.layers.PReLU(
            alpha_initializer=tf.keras.initializers.RandomUniform(0.05, 0.6, seed=2)),
            (1, 3, 4, 5), ["PRELU"], lo=-2, hi=3),
    ]


def binary_fixtures() -> list[Fixture]:
    c = _const
    return [
        binary("add", lambda a, b: a + b, (1, 4, 5, 3), (1, 4, 5, 3), ["ADD"]),
        binary("add_bcast_relu", lambda a, b: tf.nn.relu(a + b), (1, 4, 5, 3), (1, 1, 5, 1), ["ADD"],
               activation="RELU"),
        binary("add_bcast_relu6", lambda a, b: tf.nn.relu6(a * 3.0 + b), (2, 3, 1, 4), (3, 5, 1), ["ADD"],
               lo=-2, hi=3, activation="RELU6"),
        unary("add_const_5d", lambda a: a + c("add_const_5d", (1, 2, 1, 4, 1), -2, 2), shape=(1, 2, 3, 4, 5),
              expect=["ADD"]),
        binary("add_n1_to_1", lambda a, b: tf.clip_by_value(a + b, -1.0, 1.0), (3, 1, 6), (1, 4, 6), ["ADD"],
               activation="RELU_N1_TO_1"),
        binary("sub", lambda a, b: a - b, (1, 3, 4, 5), (1, 3, 4, 5), ["SUB"]),
        binary("sub_bcast_n1_to_1", lambda a, b: tf.clip_by_value(a - b, -1.0, 1.0), (1, 3, 4, 5), (5,),
               ["SUB"], activation="RELU_N1_TO_1"),
        unary("sub_const_relu", lambda a: tf.nn.relu(c("sub_const", (1, 1, 6)) - a), shape=(2, 5, 6),
              expect=["SUB"], activation="RELU"),
        binary("mul", lambda a, b: a * b, (1, 4, 4, 3), (1, 4, 4, 3), ["MUL"]),
        binary("mul_bcast_relu", lambda a, b: tf.nn.relu(a * b), (1, 2, 3, 4, 5), (1, 2, 1, 4, 1), ["MUL"],
               activation="RELU"),
        binary("mul_relu6", lambda a, b: tf.nn.relu6(a * b * 4.0), (1, 3, 4, 2), (1, 3, 4, 2), ["MUL"],
               lo=-2, hi=2, activation="RELU6"),
        binary("mul_n1_to_1", lambda a, b: tf.clip_by_value(a * b, -1.0, 1.0), (2, 5), (1, 5), ["MUL"],
               lo=-1.5, hi=1.5, activation="RELU_N1_TO_1"),
        unary("mul_const", lambda a: a * c("mul_const", (7,), 0.5, 3.0), shape=(3, 4, 7), expect=["MUL"]),
        binary("maximum_bcast", lambda a, b: tf.maximum(a, b), (1, 4, 5, 3), (1, 1, 5, 3), ["MAXIMUM"]),
        binary("minimum", lambda a, b: tf.minimum(a, b), (2, 3, 7), (2, 3, 7), ["MINIMUM"]),
        unary("minimum_const", lambda a: tf.minimum(a, c("min_const", (1, 1, 3), -0.5, 0.5)),
              expect=["MINIMUM"]),
    ]


def movement_fixtures() -> list[Fixture]:
    ss = tf.strided_slice
    return [
        unary("transpose_4d", lambda x: tf.transpose(x, (0, 2, 3, 1)), expect=["TRANSPOSE"], perm=[0, 2, 3, 1]),
        unary("transpose_3d", lambda x: tf.transpose(x, (2, 0, 1)), shape=(3, 4, 5), expect=["TRANSPOSE"],
              perm=[2, 0, 1]),
        unary("transpose_5d", lambda x: tf.transpose(x, (0, 4, 2, 1, 3)), shape=(1, 2, 3, 4, 5),
              expect=["TRANSPOSE"], perm=[0, 4, 2, 1, 3]),
        binary("concat_axis1", lambda a, b: tf.concat([a, b], axis=1), (1, 2, 5, 3), (1, 4, 5, 3),
               ["CONCATENATION"], axis=1),
        Fixture("concat3_neg_axis", _fn([((2, 3), -1, 1), ((2, 4), -1, 1), ((2, 1), -1, 1)],
                                        lambda a, b, d: tf.concat([a, b, d], axis=-1)),
                [((2, 3), -1, 1), ((2, 4), -1, 1), ((2, 1), -1, 1)], ["CONCATENATION"], {"axis": -1}),
        unary("split_axis3", lambda x: tf.split(x, 3, axis=3), shape=(1, 4, 5, 6), expect=["SPLIT"], num=3,
              axis=3),
        unary("split_neg_axis", lambda x: tf.split(x, 2, axis=-2), shape=(3, 4, 5), expect=["SPLIT"], num=2,
              axis=-2),
        unary("split_v", lambda x: tf.split(x, [1, 4, 2], axis=2), shape=(1, 3, 7, 2), expect=["SPLIT_V"],
              sizes=[1, 4, 2], axis=2),
        unary("split_v_infer", lambda x: tf.split(x, [2, -1], axis=-1), shape=(2, 3, 9), expect=["SPLIT_V"],
              sizes=[2, -1], axis=-1),
        unary("slice", lambda x: tf.slice(x, [0, 1, 2, 0], [1, 3, -1, 2]), shape=(1, 5, 7, 3),
              expect=["SLICE"], begin=[0, 1, 2, 0], size=[1, 3, -1, 2]),
        unary("slice_5d", lambda x: tf.slice(x, [0, 1, 0, 2, 1], [1, 1, 3, 2, -1]), shape=(1, 2, 3, 4, 5),
              expect=["SLICE"]),
        unary("strided_slice_masks", lambda x: ss(x, [0, 1, 0, 2], [0, 5, 6, 3], [1, 2, 3, 1], begin_mask=0b0101,
                                                   end_mask=0b0001), shape=(1, 6, 7, 3),
              expect=["STRIDED_SLICE"], begin_mask=5, end_mask=1),
        unary("strided_slice_negative", lambda x: x[:, ::-2, -2:0:-1, :], shape=(1, 6, 7, 3),
              expect=["STRIDED_SLICE"]),
        unary("strided_slice_shrink", lambda x: x[0, :, 3, 1:], shape=(1, 5, 6, 4), expect=["STRIDED_SLICE"],
              shrink_axis_mask=5),
        unary("strided_slice_ellipsis", lambda x: x[..., 1::2], shape=(2, 3, 7), expect=["STRIDED_SLICE"],
              ellipsis=True),
        unary("strided_slice_new_axis", lambda x: x[:, tf.newaxis, 1:4], shape=(3, 6), expect=[],
              new_axis=True),
        unary("strided_slice_clamp", lambda x: ss(x, [-9, 1], [100, -1], [1, 1]), shape=(4, 6),
              expect=["STRIDED_SLICE"]),
        Fixture("pack_axis1", _fn([((2, 3, 4), -1, 1), ((2, 3, 4), -2, 2)], lambda a, b: tf.stack([a, b], 1)),
                [((2, 3, 4), -1, 1), ((2, 3, 4), -2, 2)], ["PACK"], {"axis": 1}),
        Fixture("pack3_last", _fn([((3, 2), -1, 1)] * 3, lambda a, b, d: tf.stack([a, b, d], -1)),
                [((3, 2), -1, 1)] * 3, ["PACK"], {"axis": -1}),
        unary("unpack_axis0", lambda x: tf.unstack(x, axis=0), shape=(3, 4, 5), expect=["UNPACK"], axis=0),
        unary("unpack_neg_axis", lambda x: tf.unstack(x, axis=-1), shape=(2, 3, 4), expect=["UNPACK"], axis=-1),
        unary("pad", lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]]), expect=["PAD"]),
        unary("pad_channels", lambda x: tf.pad(x, [[0, 1], [2, 0], [1, 3]]), shape=(2, 3, 4), lo=0.2, hi=2.0,
              expect=["PAD"]),
        unary("pad_5d", lambda x: tf.pad(x, [[0, 0], [1, 0], [0, 2], [1, 1], [2, 0]]), shape=(1, 2, 3, 2, 3),
              expect=["PAD"]),
        unary("padv2_value", lambda x: tf.pad(x, [[0, 0], [1, 1], [0, 2], [1, 0]], constant_values=0.7),
              expect=["PADV2"], constant=0.7),
        unary("mirror_pad_reflect", lambda x: tf.pad(x, [[0, 0], [2, 1], [1, 3], [0, 0]], mode="REFLECT"),
              shape=(1, 4, 5, 2), expect=["MIRROR_PAD"], mode="REFLECT"),
        unary("mirror_pad_symmetric", lambda x: tf.pad(x, [[1, 0], [2, 3], [0, 1]], mode="SYMMETRIC"),
              shape=(2, 4, 3), expect=["MIRROR_PAD"], mode="SYMMETRIC"),
        unary("squeeze", lambda x: tf.squeeze(x, axis=[0, 2]), shape=(1, 4, 1, 3), expect=[]),
        unary("expand_dims", lambda x: tf.expand_dims(x, -2), shape=(2, 3, 4), expect=[]),
    ]


def resize_fixtures() -> list[Fixture]:
    out = []
    for kind in ("nearest", "bilinear"):
        fn = tf.compat.v1.image.resize_nearest_neighbor if kind == "nearest" else tf.compat.v1.image.resize_bilinear
        op = "RESIZE_NEAREST_NEIGHBOR" if kind == "nearest" else "RESIZE_BILINEAR"
        for size, ac, hp in (((9, 11), False, False), ((9, 11), True, False), ((9, 11), False, True),
                             ((3, 4), False, False), ((3, 4), True, False), ((3, 4), False, True)):
            tag = "up" if size[0] > 5 else "down"
            name = f"resize_{kind}_{tag}" + ("_ac" if ac else "") + ("_hp" if hp else "")
            out.append(unary(name, lambda x, fn=fn, size=size, ac=ac, hp=hp: fn(
                x, size, align_corners=ac, half_pixel_centers=hp), shape=(1, 5, 6, 3), expect=[op],
                size=list(size), align_corners=ac, half_pixel_centers=hp))
    return out


def conv_fixtures() -> list[Fixture]:
    c = _const
    return [
        unary("transpose_conv_s2_same", lambda x: tf.nn.conv2d_transpose(
            x, c("tc1_w", (3, 3, 4, 3), -0.5, 0.5), (1, 10, 12, 4), 2, "SAME") + c("tc1_b", (4,), -0.3, 0.3),
              shape=(1, 5, 6, 3), expect=["TRANSPOSE_CONV"], stride=2, padding="SAME", bias=True),
        unary("transpose_conv_s2_valid_nobias", lambda x: tf.nn.conv2d_transpose(
            x, c("tc2_w", (3, 2, 5, 3), -0.5, 0.5), (1, 9, 8, 5), (2, 2), "VALID"),
              shape=(1, 4, 4, 3), expect=["TRANSPOSE_CONV"], stride=2, padding="VALID", bias=False),
        unary("transpose_conv_s1_relu", lambda x: tf.nn.relu(tf.nn.conv2d_transpose(
            x, c("tc3_w", (2, 3, 2, 4), -0.5, 0.5), (1, 5, 6, 2), (1, 1), "SAME") + c("tc3_b", (2,))),
              shape=(1, 5, 6, 4), expect=["TRANSPOSE_CONV"], stride=1, padding="SAME", activation="RELU"),
        unary("depthwise_m2", lambda x: tf.nn.depthwise_conv2d(
            x, c("dw2_w", (3, 3, 3, 2)), (1, 1, 1, 1), "SAME") + c("dw2_b", (6,), -0.2, 0.2),
              shape=(1, 6, 7, 3), expect=["DEPTHWISE_CONV_2D"], depth_multiplier=2),
        unary("depthwise_m3_s2_relu6", lambda x: tf.nn.relu6(tf.nn.depthwise_conv2d(
            x, c("dw3_w", (3, 3, 2, 3)), (1, 2, 2, 1), "VALID") + c("dw3_b", (6,), -0.2, 0.2)),
              shape=(1, 7, 8, 2), expect=["DEPTHWISE_CONV_2D"], depth_multiplier=3, stride=2),
        unary("depthwise_m2_dilated", lambda x: tf.nn.depthwise_conv2d(
            x, c("dw4_w", (3, 2, 4, 2)), (1, 1, 1, 1), "SAME", dilations=(2, 2)),
              shape=(1, 7, 7, 4), expect=["DEPTHWISE_CONV_2D"], depth_multiplier=2, dilation=2),
    ]


def reduce_fixtures() -> list[Fixture]:
    def mean(axes, keep):
        return lambda x: tf.reduce_mean(x, axis=axes, keepdims=keep)

    def total(axes, keep):
        return lambda x: tf.reduce_sum(x, axis=axes, keepdims=keep)

    return [
        unary("mean_hw_keep", mean([1, 2], True), shape=(1, 5, 6, 4), expect=["MEAN"], axes=[1, 2], keep=True),
        unary("mean_hw", mean([1, 2], False), shape=(2, 5, 6, 4), expect=["MEAN"], axes=[1, 2], keep=False),
        unary("mean_last", mean([-1], False), shape=(3, 4, 7), lo=-0.5, hi=1.5, expect=["MEAN"], axes=[-1]),
        unary("mean_02_keep", mean([0, 2], True), shape=(3, 4, 5), expect=["MEAN"], axes=[0, 2], keep=True),
        unary("mean_all", mean([0, 1, 2, 3], False), shape=(1, 3, 4, 5), expect=["MEAN"], axes=[0, 1, 2, 3]),
        unary("sum_axis1_keep", total([1], True), shape=(1, 5, 6, 3), expect=["SUM"], axes=[1], keep=True),
        unary("sum_123", total([1, 2, 3], False), shape=(2, 3, 4, 2), lo=-0.2, hi=0.3, expect=["SUM"],
              axes=[1, 2, 3]),
        unary("sum_neg", total([-2], False), shape=(4, 9, 2), expect=["SUM"], axes=[-2]),
    ]


def _split_concat_h(x):
    c = _const
    a, b = tf.split(x, 2, axis=1)
    a = tf.nn.relu(tf.nn.depthwise_conv2d(a, c("sch_dw", (3, 3, 8, 1)), (1, 1, 1, 1), "SAME"))
    b = tf.nn.relu6(b * c("sch_m", (8,), 0.5, 2.0))
    h = tf.concat([a, b], axis=1)
    y = tf.nn.depthwise_conv2d(x, c("sch_dw2", (3, 3, 8, 1)), (1, 1, 1, 1), "SAME")
    return tf.concat([h, y], axis=-1) * c("sch_m2", (16,), 0.5, 1.5)


def misc_fixtures() -> list[Fixture]:
    c = _const
    return [
        unary("arg_max_last", lambda x: tf.math.argmax(x, axis=-1, output_type=tf.int32), shape=(2, 5, 7),
              expect=["ARG_MAX"], axis=-1),
        unary("arg_max_axis1", lambda x: tf.math.argmax(x, axis=1, output_type=tf.int32), shape=(1, 6, 4, 3),
              expect=["ARG_MAX"], axis=1),
        Fixture("batch_matmul", _fn([((2, 3, 4), -1, 1)], lambda x: tf.matmul(x, c("bmm1", (2, 4, 5)))),
                [((2, 3, 4), -1, 1)], ["BATCH_MATMUL"], {"adj_x": False, "adj_y": False},
                {"_experimental_disable_batchmatmul_unfold": True}),
        Fixture("batch_matmul_adj_y", _fn([((2, 3, 4), -1, 1)],
                                          lambda x: tf.matmul(x, c("bmm2", (2, 6, 4)), adjoint_b=True)),
                [((2, 3, 4), -1, 1)], ["BATCH_MATMUL"], {"adj_x": False, "adj_y": True},
                {"_experimental_disable_batchmatmul_unfold": True}),
        Fixture("batch_matmul_adj_x", _fn([((2, 4, 3), -1, 1)],
                                          lambda x: tf.matmul(x, c("bmm3", (2, 4, 5)), adjoint_a=True)),
                [((2, 4, 3), -1, 1)], ["BATCH_MATMUL"], {"adj_x": True, "adj_y": False},
                {"_experimental_disable_batchmatmul_unfold": True}),
        # zero-copy views (passes/zero_copy_views.py): a SPLIT of the model input and a CONCATENATION along H
        # (contiguous blocks: views), a CONCATENATION along channels (not contiguous: a copy)
        unary("split_concat_h", _split_concat_h, shape=(1, 8, 4, 8), expect=["SPLIT", "CONCATENATION"]),
        # a SPLIT along H of a computed tensor whose parts are the model's outputs (views of one storage)
        unary("split_h_outputs", lambda x: tf.split(x * c("sho_m", (8,), 0.5, 2.0), 2, axis=1), shape=(1, 8, 4, 8),
              expect=["MUL", "SPLIT"]),
        # (With adjoint_a and a broadcast batch together the converter leaves the output scale uninitialised.)
        Fixture("batch_matmul_bcast", _fn([((2, 2, 3, 4), -1, 1)], lambda x: tf.matmul(x, c("bmm4", (1, 4, 5)))),
                [((2, 2, 3, 4), -1, 1)], ["BATCH_MATMUL"], {"adj_x": False, "adj_y": False},
                {"_experimental_disable_batchmatmul_unfold": True}),
    ]


#: convert_opts of a model keeping the converter's float32 edges (QUANTIZE after the input, DEQUANTIZE
#: before the output: the default converter without inference_input_type / inference_output_type)
FLOAT_IN = {"inference_input_type": tf.float32}
FLOAT_EDGES = {**FLOAT_IN, "inference_output_type": tf.float32}


def float_edge_fixtures() -> list[Fixture]:
    c = _const
    dwconv = _fn([((1, 6, 7, 3), -1.0, 1.0)], lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(
        x, c("fe1_w", (3, 3, 3, 1), -0.8, 0.8), (1, 1, 1, 1), "SAME") + c("fe1_b", (3,), -0.2, 0.2)))
    mul = _fn([((1, 4, 5, 6), -2.0, 2.0)], lambda x: x * c("fe2_m", (6,), 0.2, 1.5))
    argmax = _fn([((2, 5, 7), -1.0, 1.0)], lambda x: tf.math.argmax(x, axis=-1, output_type=tf.int32))
    return [
        Fixture("float_edges_dwconv", dwconv, [((1, 6, 7, 3), -1.0, 1.0)],
                ["QUANTIZE", "DEPTHWISE_CONV_2D", "DEQUANTIZE"], {"input": "float32", "output": "float32"},
                FLOAT_EDGES),
        Fixture("float_input_dwconv", dwconv, [((1, 6, 7, 3), -1.0, 1.0)], ["QUANTIZE", "DEPTHWISE_CONV_2D"],
                {"input": "float32", "output": "int8"}, FLOAT_IN),
        Fixture("float_edges_mul_const", mul, [((1, 4, 5, 6), -2.0, 2.0)], ["QUANTIZE", "MUL", "DEQUANTIZE"],
                {"input": "float32", "output": "float32"}, FLOAT_EDGES),
        Fixture("float_input_arg_max", argmax, [((2, 5, 7), -1.0, 1.0)], ["QUANTIZE", "ARG_MAX"],
                {"input": "float32", "output": "int32"}, FLOAT_IN),
    ]


# ---- conversion ----------------------------------------------------------------------------------

def int16x8(fx: Fixture, **convert_opts) -> Fixture:
    """``fx`` converted in the 16x8 mode, named ``i16_<name>`` (extra converter options: the bias type)."""
    return Fixture(f"i16_{fx.name}", fx.fn, fx.inputs, fx.expect, {**fx.attrs, "mode": "int16x8"},
                   {**fx.convert_opts, **convert_opts}, "int16x8")


def int16x8_fixtures() -> list[Fixture]:
    """Small 16x8 models (int16 activations, int8 weights, int64 biases unless said otherwise)."""
    c = _const
    conv = lambda x: tf.nn.relu(tf.nn.conv2d(x, c("i16c_w", (3, 3, 3, 4), -0.6, 0.6), 1, "SAME")  # noqa: E731
                                + c("i16c_b", (4,), -0.2, 0.2))
    fixtures = [
        unary("conv_relu", conv, shape=(1, 6, 7, 3), expect=["CONV_2D"], activation="RELU"),
        unary("conv_s2_valid", lambda x: tf.nn.conv2d(x, c("i16c2_w", (3, 2, 3, 5), -0.6, 0.6), 2, "VALID"),
              shape=(1, 7, 8, 3), lo=-2, hi=1, expect=["CONV_2D"], stride=2),
        unary("conv_dilated_relu6", lambda x: tf.nn.relu6(3.0 * tf.nn.conv2d(
            x, c("i16c3_w", (3, 3, 2, 3), -0.6, 0.6), 1, "SAME", dilations=2)), shape=(1, 7, 7, 2),
              expect=["CONV_2D"], dilation=2, activation="RELU6"),
        unary("dwconv", lambda x: tf.nn.depthwise_conv2d(x, c("i16d_w", (3, 3, 4, 1)), (1, 1, 1, 1), "SAME")
              + c("i16d_b", (4,), -0.2, 0.2), shape=(1, 6, 7, 4), expect=["DEPTHWISE_CONV_2D"]),
        unary("dwconv_m2_s2_relu", lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(
            x, c("i16d2_w", (3, 3, 3, 2)), (1, 2, 2, 1), "VALID")), shape=(1, 7, 8, 3),
              expect=["DEPTHWISE_CONV_2D"], depth_multiplier=2, stride=2, activation="RELU"),
        unary("dense", lambda x: tf.matmul(x, c("i16f_w", (12, 6))) + c("i16f_b", (6,), -0.3, 0.3),
              shape=(2, 12), expect=["FULLY_CONNECTED"]),
        binary("add", lambda a, b: a + b, (1, 4, 5, 3), (1, 4, 5, 3), ["ADD"]),
        binary("add_relu", lambda a, b: tf.nn.relu(a + b), (1, 3, 4, 5), (1, 3, 4, 5), ["ADD"], lo=-3, hi=1,
               activation="RELU"),
        # broadcasting and constant operands (the general Binary kernel on int16 elements)
        binary("add_bcast", lambda a, b: a + b, (1, 4, 5, 3), (1, 1, 5, 1), ["ADD"]),
        unary("add_const_relu6", lambda x: tf.nn.relu6(3.0 * x + c("i16ac", (6,), -1.0, 1.0)), shape=(1, 3, 4, 6),
              expect=["ADD"], activation="RELU6"),
        binary("sub_bcast", lambda a, b: a - b, (1, 4, 5, 3), (1, 4, 1, 3), ["SUB"]),
        unary("sub_const_first", lambda x: c("i16sc", (1, 1, 4), -0.5, 0.5) - x, shape=(2, 3, 4), expect=["SUB"]),
        binary("mul_bcast", lambda a, b: a * b, (1, 3, 4, 6), (1, 1, 1, 6), ["MUL"]),
        unary("mul_const", lambda x: x * c("i16mc", (5,), -1.5, 1.5), shape=(1, 4, 3, 5), expect=["MUL"]),
        binary("mul_same", lambda a, b: a * b, (2, 7), (2, 7), ["MUL"]),
        binary("maximum_bcast", tf.maximum, (1, 3, 4, 2), (1, 3, 1, 2), ["MAXIMUM"]),
        binary("minimum", tf.minimum, (1, 3, 4, 2), (1, 3, 4, 2), ["MINIMUM"]),
        unary("mean_hw", lambda x: tf.reduce_mean(x, axis=[1, 2]), shape=(1, 5, 6, 4), expect=["MEAN"]),
        unary("mean_last_keep", lambda x: tf.reduce_mean(x, axis=[-1], keepdims=True), shape=(3, 4, 7),
              lo=-0.5, hi=1.5, expect=["MEAN"]),
        unary("softmax", tf.nn.softmax, shape=(3, 10), lo=-4, hi=4, expect=["SOFTMAX"]),
        unary("softmax_wide", tf.nn.softmax, shape=(1, 2, 2, 17), lo=-12, hi=9, expect=["SOFTMAX"]),
        unary("avg_pool", lambda x: tf.nn.avg_pool2d(x, 3, 2, "SAME"), shape=(1, 7, 8, 3),
              expect=["AVERAGE_POOL_2D"]),
        unary("max_pool", lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"), shape=(1, 6, 7, 3),
              expect=["MAX_POOL_2D"]),
        unary("logistic", tf.math.sigmoid, shape=(1, 4, 5, 6), lo=-8, hi=8, expect=["LOGISTIC"]),
        unary("pad", lambda x: tf.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]]), shape=(1, 4, 5, 3), expect=["PAD"]),
        unary("transpose", lambda x: tf.transpose(x, (0, 2, 3, 1)), shape=(1, 3, 4, 5), expect=["TRANSPOSE"]),
        binary("concat", lambda a, b: tf.concat([a, b], axis=-1), (1, 3, 4, 2), (1, 3, 4, 3),
               ["CONCATENATION"]),
        unary("strided_slice", lambda x: x[:, ::-1, 1:6:2, :], shape=(1, 5, 7, 3), expect=["STRIDED_SLICE"]),
        unary("split", lambda x: tf.split(x, 3, axis=-1), shape=(1, 4, 5, 6), expect=["SPLIT"]),
        unary("reshape_dense", lambda x: tf.matmul(tf.reshape(x, (2, 12)), c("i16r_w", (12, 3))),
              shape=(1, 2, 3, 4), expect=["FULLY_CONNECTED"]),
    ]
    out = [int16x8(fx) for fx in fixtures]
    out.append(int16x8(unary("float_edges_dwconv", lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(
        x, c("i16fe_w", (3, 3, 3, 1), -0.8, 0.8), (1, 1, 1, 1), "SAME")), shape=(1, 6, 7, 3),
        expect=["QUANTIZE", "DEPTHWISE_CONV_2D", "DEQUANTIZE"], input="float32", output="float32"), **FLOAT_EDGES))
    out.append(int16x8(unary("conv_int32_bias", conv, shape=(1, 5, 6, 3), expect=["CONV_2D"], bias="int32"),
                       _experimental_full_integer_quantization_bias_type=tf.int32))
    out.append(int16x8(unary("dense_int32_bias", lambda x: tf.matmul(x, c("i16f2_w", (9, 4))),
                             shape=(3, 9), expect=["FULLY_CONNECTED"], bias="int32"),
                       _experimental_full_integer_quantization_bias_type=tf.int32))
    return out


def convert(fx: Fixture) -> bytes:
    if isinstance(fx.fn, tf.keras.Model):
        conv = tf.lite.TFLiteConverter.from_keras_model(fx.fn)
    else:
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fx.fn.get_concrete_function()], fx.fn)
    rng = _rng(fx.name + "/calibration")

    def representative():
        for _ in range(48):
            yield [rng.uniform(lo, hi, shape).astype(np.float32) for shape, lo, hi in fx.inputs]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    if fx.mode == "int16x8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    for key, value in fx.convert_opts.items():
        setattr(conv, key, value)
    return conv.convert()


def describe(data: bytes) -> dict:
    model = schema.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    ops = [OP_NAMES[codes[graph.Operators(i).OpcodeIndex()]] for i in range(graph.OperatorsLength())]

    def shapes(indices):
        return [graph.Tensors(int(t)).ShapeAsNumpy().tolist() for t in indices]

    scales = [graph.Tensors(i).Quantization().ScaleAsNumpy() for i in range(graph.TensorsLength())
              if graph.Tensors(i).Quantization() is not None and graph.Tensors(i).Quantization().ScaleLength()]
    sane = all(np.isfinite(s).all() and (s < 1e4).all() for s in scales)
    return {"ops": ops, "inputs": shapes(graph.InputsAsNumpy()), "outputs": shapes(graph.OutputsAsNumpy()),
            "sane_scales": bool(sane)}


def main(argv: list[str]) -> int:
    """Every fixture; with names as arguments only those (the other files and their manifest entries
    are kept as they are)."""
    tf.keras.utils.set_random_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    fixtures = (unary_fixtures() + binary_fixtures() + movement_fixtures() + resize_fixtures()
                + conv_fixtures() + reduce_fixtures() + misc_fixtures() + float_edge_fixtures()
                + int16x8_fixtures())
    names = [fx.name for fx in fixtures]
    assert len(set(names)) == len(names), "duplicate fixture names"
    unknown = set(argv) - set(names)
    if unknown:
        print(f"unknown fixtures: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    manifest, failed = {}, []
    if argv:
        manifest = json.loads((OUT / "MANIFEST.json").read_text())
        fixtures = [fx for fx in fixtures if fx.name in argv]
    for fx in fixtures:
        data = convert(fx)
        info = describe(data)
        missing = [op for op in fx.expect if op not in info["ops"]]
        if missing:
            failed.append(f"{fx.name}: expected {missing}, converter gave {info['ops']}")
        if not info.pop("sane_scales"):
            failed.append(f"{fx.name}: the converter wrote an absurd scale")
        (OUT / f"{fx.name}.tflite").write_bytes(data)
        manifest[f"{fx.name}.tflite"] = {**info, "attributes": fx.attrs, "bytes": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}
        print(f"{fx.name:34s} {len(data):6d} B  {' '.join(info['ops'])}")
    stale = set() if argv else set(p.name for p in OUT.glob("*.tflite")) - set(manifest)
    for name in stale:
        (OUT / name).unlink()
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(v["bytes"] for v in manifest.values())
    print(f"{len(manifest)} fixtures, {total} bytes")
    for line in failed:
        print("MISSING OP:", line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
