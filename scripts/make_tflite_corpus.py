"""Generate the conformance corpus: int8 .tflite models shaped like public TinyML reference networks.

Run once, outside the project's environment (TensorFlow is large and is never
needed at test time); ``tf_keras`` (Keras 2) is needed only for the LSTM model,
whose layer Keras 3 no longer lowers to the fused TFLite LSTM operator:

    python3.11 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.20.0 tf_keras~=2.20.0
    /work/tfvenv/bin/python scripts/make_tflite_corpus.py [NAME ...]   # NAMEs: rebuild only these
    PYTHONPATH=. .venv/bin/python scripts/check_tflite_corpus.py   # fills in the TFLM and compiler status

Writes into tests/fixtures/corpus/ one .tflite per model below and MANIFEST.json
(per file: what it imitates and exercises, input/output shapes, dtypes and
quantisation, TFLite builtin operators with counts, the intended operators the
converter did not emit, size and sha256). This script is the only source of
these files: every model is built here with seeded random weights (the
structure is what matters) and converted with the TF Lite converter, full
integer (int8, or 16x8 for int16x8_cnn). The run is deterministic: the same
TensorFlow gives the same bytes, and the status fields written by
check_tflite_corpus.py are kept for files whose sha256 did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bit-stable float calibration
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "corpus"
L = tf.keras.layers
SEED = 0
SAMPLES = 20
STATUS_KEYS = ("tflm_runs", "tflm_error", "tflm_arena_bytes", "compiler_status_at_creation")

# --------------------------------------------------------------------------- building blocks


def _act(x, kind: str | None):
    """relu | relu6 | hswish | None applied to ``x``."""
    if kind == "relu":
        return L.ReLU()(x)
    if kind == "relu6":
        return L.ReLU(6.0)(x)
    if kind == "hswish":
        return L.Activation("hard_swish")(x)
    return x


def _conv_bn(x, filters: int, kernel, strides=1, act: str | None = "relu", padding: str = "same"):
    """Conv2D without bias, BatchNormalization (folded by the converter), activation."""
    x = L.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    return _act(L.BatchNormalization()(x), act)


def _dw_bn(x, kernel, strides=1, act: str | None = "relu", padding: str = "same"):
    """DepthwiseConv2D without bias, BatchNormalization, activation."""
    x = L.DepthwiseConv2D(kernel, strides=strides, padding=padding, use_bias=False)(x)
    return _act(L.BatchNormalization()(x), act)


def _squeeze_excite(x, squeeze: int):
    """MobileNetV3 SE: global average pool -> 1x1 relu -> 1x1 -> hard sigmoid -> MUL over H, W."""
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(squeeze, 1, activation="relu")(s)
    s = L.Activation("hard_sigmoid")(L.Conv2D(x.shape[-1], 1)(s))
    return L.Multiply()([x, s])


def _inverted_residual(
    x,
    out: int,
    expand: int,
    kernel: int = 3,
    strides: int = 1,
    act: str = "relu6",
    se: bool = False,
    explicit_pad: bool = False,
):
    """MobileNetV2/V3 and EfficientNet MBConv: 1x1 expand, depthwise, [SE], 1x1 project, residual if shapes allow.

    ``explicit_pad``: a stride-2 depthwise is a ZeroPadding2D then a "valid" depthwise, as PyTorch exports it.
    """
    cin = x.shape[-1]
    y = _conv_bn(x, cin * expand, 1, act=act) if expand != 1 else x
    if explicit_pad and strides == 2:
        y = L.ZeroPadding2D(kernel // 2)(y)
        y = _dw_bn(y, kernel, strides, act, padding="valid")
    else:
        y = _dw_bn(y, kernel, strides, act)
    if se:
        y = _squeeze_excite(y, max(8, y.shape[-1] // 4))
    y = _conv_bn(y, out, 1, act=None)
    return L.Add()([x, y]) if strides == 1 and cin == out else y


def _mobilenet_v1_body(x, alpha: float, act: str):
    """MobileNetV1: 3x3/s2 stem and the 13 depthwise-separable blocks, widths scaled by ``alpha``."""
    x = _conv_bn(x, int(32 * alpha), 3, 2, act)
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    for filters, strides in blocks:
        x = _dw_bn(x, 3, strides, act)
        x = _conv_bn(x, int(filters * alpha), 1, act=act)
    return x


def _input(shape: tuple[int, ...], name: str = "input"):
    """A batch-1 input with a fixed name (the tensor name must not depend on how many models were built before)."""
    return tf.keras.Input(shape, batch_size=1, name=name)


# --------------------------------------------------------------------------- models


def resnet8() -> tf.keras.Model:
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10)."""
    inp = _input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inp)))
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if strides != 1:
            x = L.Conv2D(filters, 1, strides)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    return tf.keras.Model(inp, L.Dense(10, activation="softmax")(x))


def ds_cnn() -> tf.keras.Model:
    """MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, 12 classes)."""
    inp = _input((49, 10, 1))
    x = _conv_bn(inp, 64, (10, 4), 2)
    x = L.Dropout(0.2)(x)
    for _ in range(4):
        x = _dw_bn(x, 3)
        x = _conv_bn(x, 64, 1)
    x = L.Dropout(0.4)(x)
    x = L.Flatten()(L.AveragePooling2D(x.shape[1:3])(x))
    return tf.keras.Model(inp, L.Dense(12, activation="softmax")(x))


def mobilenet_v1_025_vww() -> tf.keras.Model:
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, 96x96 RGB, 2 classes."""
    inp = _input((96, 96, 3))
    x = _mobilenet_v1_body(inp, 0.25, "relu")
    x = L.Flatten()(L.AveragePooling2D(x.shape[1:3])(x))
    return tf.keras.Model(inp, L.Dense(2, activation="softmax")(x))


def fc_autoencoder() -> tf.keras.Model:
    """MLPerf Tiny anomaly detection: dense autoencoder 640 -> 8 -> 640 (ToyADMOS log-mel frames)."""
    inp = _input((640,))
    x = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
    return tf.keras.Model(inp, L.Dense(640)(x))


def person_detect() -> tf.keras.Model:
    """TFLM person detection: MobileNetV1 0.25 (ReLU6, as TF-Slim) on 96x96 grayscale, 1x1 conv logits."""
    inp = _input((96, 96, 1))
    x = _mobilenet_v1_body(inp, 0.25, "relu6")
    x = L.AveragePooling2D(x.shape[1:3])(x)
    x = L.Reshape((2,))(L.Conv2D(2, 1)(x))
    return tf.keras.Model(inp, L.Softmax()(x))


def micro_speech() -> tf.keras.Model:
    """TFLM micro speech: flat 49x40 spectrogram, one 10x8/s2 depthwise conv x8, dense 4."""
    inp = _input((1960,))
    x = L.Reshape((49, 40, 1))(inp)
    x = L.DepthwiseConv2D((10, 8), strides=2, padding="same", depth_multiplier=8, activation="relu")(x)
    x = L.Dense(4)(L.Flatten()(x))
    return tf.keras.Model(inp, L.Softmax()(x))


def mobilenet_v3_small() -> tf.keras.Model:
    """MobileNetV3-small-like at 96x96: hard-swish, squeeze-and-excite, reduced width and depth."""
    inp = _input((96, 96, 3))
    x = _conv_bn(inp, 16, 3, 2, "hswish")
    # (kernel, expansion, out, SE, activation, stride)
    blocks = [
        (3, 1, 16, True, "relu", 2),
        (3, 3, 16, False, "relu", 2),
        (3, 3, 16, False, "relu", 1),
        (5, 3, 24, True, "hswish", 2),
        (5, 3, 24, True, "hswish", 1),
        (5, 3, 32, True, "hswish", 2),
    ]
    for kernel, expand, out, se, act, strides in blocks:
        x = _inverted_residual(x, out, expand, kernel, strides, act, se)
    x = _conv_bn(x, 64, 1, act="hswish")
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Activation("hard_swish")(L.Conv2D(64, 1)(x))
    x = L.Flatten()(L.Conv2D(10, 1)(x))
    return tf.keras.Model(inp, L.Softmax()(x))


def efficientnet_lite0() -> tf.keras.Model:
    """EfficientNet-lite0-like at 96x96: MBConv with ReLU6, no SE, 3x3 and 5x5 kernels, reduced width and depth."""
    inp = _input((96, 96, 3))
    x = _conv_bn(inp, 16, 3, 2, "relu6")
    # (kernel, stride, expansion, out, repeats) as the lite0 stages, narrower and shallower
    stages = [(3, 1, 1, 8, 1), (3, 2, 6, 8, 2), (5, 2, 6, 12, 2), (3, 2, 6, 16, 2), (5, 1, 6, 24, 1), (5, 2, 6, 24, 1)]
    for kernel, strides, expand, out, repeats in stages:
        for i in range(repeats):
            x = _inverted_residual(x, out, expand, kernel, strides if i == 0 else 1)
    x = _conv_bn(x, 64, 1, act="relu6")
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Dense(10, activation="softmax")(x))


def fomo_detector() -> tf.keras.Model:
    """FOMO-like centroid detector: MobileNetV2-ish backbone, 2x nearest upsampling, concat, 12x12 class map."""
    inp = _input((96, 96, 3))
    x = _conv_bn(inp, 8, 3, 2, "relu6")
    x = _inverted_residual(x, 8, 1)
    x = _inverted_residual(x, 8, 4, strides=2)
    x = _inverted_residual(x, 8, 4)
    x = _inverted_residual(x, 16, 4, strides=2)
    skip = _inverted_residual(x, 16, 4)
    x = _inverted_residual(skip, 24, 4, strides=2)
    x = _inverted_residual(x, 24, 4)
    # Keras 3's UpSampling2D lowers to RESHAPE + TILE; tf.image.resize gives RESIZE_NEAREST_NEIGHBOR
    x = L.Lambda(lambda t: tf.image.resize(t, (12, 12), method="nearest"))(x)
    x = L.Concatenate()([x, skip])
    x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.Conv2D(4, 1)(x)  # background + 3 object classes per cell
    return tf.keras.Model(inp, L.Softmax()(x))


def unet_small() -> tf.keras.Model:
    """Small U-Net segmentation at 64x64 grayscale: conv + max pool encoder, TRANSPOSE_CONV decoder, skips."""
    inp = _input((64, 64, 1))

    def double_conv(t, filters: int):
        t = L.Conv2D(filters, 3, padding="same", activation="relu")(t)
        return L.Conv2D(filters, 3, padding="same", activation="relu")(t)

    e1 = double_conv(inp, 8)
    e2 = double_conv(L.MaxPooling2D(2)(e1), 16)
    b = double_conv(L.MaxPooling2D(2)(e2), 32)
    d2 = L.Conv2DTranspose(16, 2, strides=2)(b)
    d2 = double_conv(L.Concatenate()([d2, e2]), 16)
    d1 = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(d2)
    d1 = double_conv(L.Concatenate()([d1, e1]), 8)
    return tf.keras.Model(inp, L.Conv2D(1, 1, activation="sigmoid")(d1))


def pytorch_style_nchw() -> tf.keras.Model:
    """MobileNetV2-like as a PyTorch exporter writes it: NCHW input + TRANSPOSE, explicit PAD before stride 2."""
    inp = _input((3, 64, 64))
    x = L.Permute((2, 3, 1))(inp)
    x = L.ZeroPadding2D(1)(x)
    x = _conv_bn(x, 16, 3, 2, "relu6", padding="valid")
    for out, expand, strides in ((8, 1, 1), (12, 4, 2), (12, 4, 1), (16, 4, 2), (16, 4, 1), (24, 4, 2)):
        x = _inverted_residual(x, out, expand, strides=strides, explicit_pad=True)
    x = _conv_bn(x, 48, 1, act="relu6")
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Dense(10)(x))


def int16x8_cnn() -> tf.keras.Model:
    """Small CNN for the 16x8 mode: conv, depthwise, residual add, mean, dense, softmax."""
    inp = _input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    y = L.Conv2D(8, 1)(y)
    x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Dense(5, activation="softmax")(x))


def lstm_kws():
    """Keyword spotting with one LSTM over 49 MFCC frames (Keras 2 LSTM: fuses to UNIDIRECTIONAL_SEQUENCE_LSTM)."""
    import tf_keras  # Keras 3's LSTM converts to a WHILE loop instead

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    inp = tf_keras.Input((49, 10), batch_size=1, name="input")
    x = tf_keras.layers.LSTM(24)(inp)
    return tf_keras.Model(inp, tf_keras.layers.Dense(12, activation="softmax")(x))


def multi_io() -> tf.keras.Model:
    """Two inputs (image, feature vector), two outputs (class softmax, regression) joined by CONCATENATION."""
    image = _input((32, 32, 3), "image")
    vector = _input((16,), "vector")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(image)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(16, 1, strides=2, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    v = L.Dense(16, activation="relu")(vector)
    x = L.Dense(32, activation="relu")(L.Concatenate()([x, v]))
    cls = L.Dense(5, activation="softmax", name="class")(x)
    reg = L.Dense(1, name="value")(x)
    return tf.keras.Model([image, vector], [cls, reg])


def misc_ops() -> tf.keras.Model:
    """A CNN touching many elementwise, slicing, resizing, packing and padding operators at once."""
    inp = _input((32, 32, 3))
    x = L.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT"))(inp)
    x = L.Conv2D(8, 3)(x)
    a = L.LeakyReLU(0.1)(x)
    b = L.PReLU(shared_axes=[1, 2], alpha_initializer=tf.keras.initializers.RandomUniform(0.05, 0.3, seed=SEED))(x)
    m = L.Multiply()([L.Activation("tanh")(a), L.Activation("sigmoid")(b)])
    d = L.Subtract()([a, b])
    y = L.Concatenate()([L.Maximum()([m, d]), L.Minimum()([m, d])])
    s1, s2 = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(y)
    s1 = L.Lambda(lambda t: tf.slice(t, [0, 0, 0, 0], [1, 32, 32, 4]))(s1)
    s2 = L.Lambda(lambda t: t[:, :, :, 2:6])(s2)
    z = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(L.Concatenate()([s1, s2]))
    z = L.Lambda(lambda t: tf.stack(tf.unstack(t, axis=-1)[::-1], axis=-1))(z)
    z = L.Lambda(lambda t: t[:, ::2, ::2, :])(z)
    z = L.Lambda(lambda t: tf.image.resize(t, (16, 16), method="bilinear"))(z)
    g = L.GlobalAveragePooling2D(keepdims=True)(z)
    g = L.Lambda(lambda t: tf.squeeze(t, [1, 2]))(g)
    g = L.Lambda(lambda t: tf.expand_dims(t, 1))(L.Dense(8)(g))
    z = L.Multiply()([z, L.Reshape((1, 1, 8))(g)])
    probs = L.Softmax()(L.Conv2D(6, 1)(z))
    label = L.Lambda(lambda t: tf.argmax(t, axis=-1, output_type=tf.int32))(probs)
    return tf.keras.Model(inp, [probs, label])


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Spec:
    """One corpus file: how to build it and what it is for."""

    name: str
    build: Callable[[], object]
    imitates: str
    exercises: str
    intended_ops: tuple[str, ...]
    mode: str = "int8"  # int8 | int16x8
    layout: str = "nhwc"  # how to draw representative 4-D inputs: nhwc | nchw
    notes: str = ""  # what the converter did differently from the Keras graph


FLAT_NOTE = (
    "Keras Flatten before Dense emits no RESHAPE: the converter feeds the 4-D pooled tensor to FULLY_CONNECTED "
    "directly."
)

SPECS = (
    Spec(
        "resnet8",
        resnet8,
        "MLPerf Tiny image classification ResNet-8 (CIFAR-10, 32x32x3, 10 classes)",
        "3x3 convs with BN folded, stride-2 stages with 1x1/s2 projection shortcuts, residual ADD + ReLU, "
        "8x8 average pool, FULLY_CONNECTED on the 4-D pooled tensor (the converter folds the flatten), softmax",
        ("CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"),
        notes="The ReLU after each ADD is fused into the ADD (fused_activation_function RELU). " + FLAT_NOTE,
    ),
    Spec(
        "ds_cnn",
        ds_cnn,
        "MLPerf Tiny keyword spotting DS-CNN (49x10x1 MFCC, 64 filters, 12 classes)",
        "non-square 10x4/s2 stem conv on a narrow input, 4 depthwise-separable blocks (BN+ReLU folded), "
        "non-square 25x5 average pool, FULLY_CONNECTED on the 4-D pooled tensor (flatten folded), softmax",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"),
        notes=FLAT_NOTE,
    ),
    Spec(
        "mobilenet_v1_025_vww",
        mobilenet_v1_025_vww,
        "MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, 96x96x3, 2 classes",
        "full 13-block MobileNetV1 depthwise-separable stack with ReLU, SAME stride-2 depthwise, 3x3 average pool, "
        "FULLY_CONNECTED on the 4-D pooled tensor (flatten folded), softmax; a realistic activation-memory profile",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"),
        notes=FLAT_NOTE,
    ),
    Spec(
        "fc_autoencoder",
        fc_autoencoder,
        "MLPerf Tiny anomaly detection: FC autoencoder 640-128x4-8-128x4-640",
        "a fully-connected-only network on a 2-D (1, 640) input, BN folded into dense layers, ReLU, "
        "8-wide bottleneck, linear 640 output",
        ("FULLY_CONNECTED",),
    ),
    Spec(
        "person_detect",
        person_detect,
        "TFLM person detection example: MobileNetV1 0.25, 96x96x1 grayscale, 2 classes",
        "single-channel input into a 3x3/s2 conv, MobileNetV1 with ReLU6, average pool, 1x1 conv classifier, "
        "RESHAPE to (1, 2), softmax",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"),
    ),
    Spec(
        "micro_speech",
        micro_speech,
        "TFLM micro speech example: flat 49x40 spectrogram, 10x8 depthwise conv x8, 4 classes",
        "flat (1, 1960) int8 input reshaped to 4-D, depthwise conv with depth_multiplier 8 on one channel, "
        "10x8 kernel stride 2 SAME, flatten (a RESHAPE: this converter keeps it) + dense on the 25x20x8 map, softmax",
        ("RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"),
        notes="Unlike after a pooling layer, the converter keeps the flatten here as a RESHAPE to (1, 4000) before "
        "FULLY_CONNECTED.",
    ),
    Spec(
        "mobilenet_v3_small",
        mobilenet_v3_small,
        "MobileNetV3-small (reduced width and depth), 96x96x3, 10 classes",
        "HARD_SWISH, squeeze-and-excite (MEAN keepdims -> 1x1 conv relu -> 1x1 conv whose bias absorbs the hard "
        "sigmoid's +3 and fuses RELU6 -> MUL by a 1/6 scalar -> MUL broadcast over H, W), 5x5 depthwise, "
        "inverted residuals, 1x1 conv head on a 1x1 map, RESHAPE, softmax",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH", "MEAN", "MUL", "ADD", "RESHAPE", "SOFTMAX"),
    ),
    Spec(
        "efficientnet_lite0",
        efficientnet_lite0,
        "EfficientNet-lite0 (reduced width and depth), 96x96x3, 10 classes",
        "MBConv blocks with ReLU6 and no SE, 3x3 and 5x5 depthwise (also stride 2), 6x expansion, "
        "residual ADDs, global average pool (MEAN), dense, softmax",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"),
    ),
    Spec(
        "fomo_detector",
        fomo_detector,
        "Edge Impulse FOMO / YOLO-like centroid detector, 96x96x3 -> 12x12 cells x 4 classes",
        "MobileNetV2-ish backbone, 2x nearest upsampling 6x6 -> 12x12 (RESIZE_NEAREST_NEIGHBOR), CONCATENATION "
        "with the 1/8 feature map, 1x1 conv head, per-cell softmax over channels on a 4-D output",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "SOFTMAX"),
        notes="Keras 3's UpSampling2D(interpolation='nearest') converts to RESHAPE + TILE + RESHAPE, so the upsampling "
        "is a Lambda with tf.image.resize(method='nearest').",
    ),
    Spec(
        "unet_small",
        unet_small,
        "small U-Net segmentation, 64x64x1 -> 64x64x1 mask",
        "3x3 conv encoder with 2x2 max pool, Conv2DTranspose decoder (2x2/s2 VALID and 3x3/s2 SAME + ReLU), "
        "CONCATENATION skip connections, 1x1 conv with sigmoid (LOGISTIC) on a full-resolution output",
        ("CONV_2D", "MAX_POOL_2D", "TRANSPOSE_CONV", "CONCATENATION", "LOGISTIC"),
    ),
    Spec(
        "pytorch_style_nchw",
        pytorch_style_nchw,
        "MobileNetV2-like model as a PyTorch -> TFLite exporter writes it, NCHW (1, 3, 64, 64), 10 logits",
        "NCHW input TRANSPOSEd to NHWC, explicit PAD + VALID before every stride-2 conv and depthwise, "
        "inverted residuals, MEAN over H and W, FULLY_CONNECTED logits without softmax",
        ("TRANSPOSE", "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"),
        layout="nchw",
    ),
    Spec(
        "int16x8_cnn",
        int16x8_cnn,
        "a small CNN converted in TFLite's 16x8 mode (int16 activations, int8 weights)",
        "int16 input/output and activations with int8 weights and int64 biases: conv, depthwise, ADD, MEAN, "
        "dense, softmax; expected to be rejected (or supported) explicitly",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"),
        mode="int16x8",
    ),
    Spec(
        "lstm_kws",
        lstm_kws,
        "keyword spotting with an LSTM over 49 MFCC frames, 12 classes",
        "UNIDIRECTIONAL_SEQUENCE_LSTM (integer: int8 activations, int16 cell state), STRIDED_SLICE of the "
        "last step, dense, softmax; expected to be unsupported by the compiler (tests its error message)",
        ("UNIDIRECTIONAL_SEQUENCE_LSTM", "FULLY_CONNECTED", "SOFTMAX"),
        notes="Built with tf_keras (Keras 2): a Keras 3 LSTM converts to a WHILE loop over three subgraphs (and its "
        "int8 conversion crashed the converter in TF 2.20). The LSTM is fully integer: int8 in/out, no float ops.",
    ),
    Spec(
        "multi_io",
        multi_io,
        "a two-input, two-output model (image 32x32x3 + 16-value vector -> 5-class softmax + 1 regression value)",
        "two int8 inputs and two int8 outputs (the converter's tensor order, see inputs/outputs), an image "
        "branch and a vector branch joined by CONCATENATION of features",
        ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "CONCATENATION", "SOFTMAX"),
        notes="The converter orders the inputs (vector, image) and the outputs (value, class) unlike the Keras model.",
    ),
    Spec(
        "misc_ops",
        misc_ops,
        "no reference network: an operator sampler",
        "MIRROR_PAD (REFLECT), LEAKY_RELU, PRELU, TANH, LOGISTIC, MUL, SUB, MAXIMUM, MINIMUM, CONCATENATION, "
        "SPLIT, SLICE, STRIDED_SLICE (also strided), UNPACK/PACK, RESIZE_BILINEAR, squeeze/expand_dims (become "
        "RESHAPE), broadcast MUL, softmax, and an int32 ARG_MAX second output",
        (
            "MIRROR_PAD",
            "LEAKY_RELU",
            "PRELU",
            "TANH",
            "LOGISTIC",
            "MUL",
            "SUB",
            "MAXIMUM",
            "MINIMUM",
            "SPLIT",
            "SLICE",
            "STRIDED_SLICE",
            "SQUEEZE",
            "EXPAND_DIMS",
            "PACK",
            "UNPACK",
            "RESIZE_BILINEAR",
            "ARG_MAX",
        ),
        notes="tf.squeeze and tf.expand_dims never appear as SQUEEZE / EXPAND_DIMS: the converter turns them into "
        "RESHAPE or folds them into FULLY_CONNECTED's output shape. ARG_MAX stays int8 only because it reads a "
        "SOFTMAX output (on a raw conv output the converter inserted a DEQUANTIZE and a float ARG_MAX). Output 0 is "
        "the int32 ARG_MAX map, output 1 the int8 softmax map.",
    ),
)


def _randomize(model, rng: np.random.Generator) -> None:
    """Give BatchNormalization non-trivial statistics and layers non-zero biases, so folding is exercised."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            ch = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, ch),
                    rng.normal(0.0, 0.1, ch),
                    rng.normal(0.0, 0.1, ch),
                    rng.uniform(0.5, 1.5, ch),
                ]
            )
        elif getattr(layer, "bias", None) is not None and hasattr(layer.bias, "assign"):
            layer.bias.assign(rng.normal(0.0, 0.05, layer.bias.shape).astype(np.float32))


def _sample(rng: np.random.Generator, shape: tuple[int, ...], layout: str) -> np.ndarray:
    """One representative input in [-1, 1]: a smooth random field plus fine noise for images, uniform otherwise."""
    if len(shape) != 4:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    nhwc = (shape[0], shape[2], shape[3], shape[1]) if layout == "nchw" else shape
    n, h, w, c = nhwc
    coarse = rng.uniform(-1, 1, (n, max(2, h // 8), max(2, w // 8), c)).astype(np.float32)
    smooth = tf.image.resize(coarse, (h, w), method="bilinear").numpy()
    x = np.clip(0.8 * smooth + 0.2 * rng.uniform(-1, 1, nhwc), -1, 1).astype(np.float32)
    return x.transpose(0, 3, 1, 2) if layout == "nchw" else x


def _converter_input_order(model) -> list[int]:
    """Indices into ``model.inputs`` in the order of the converted model's inputs (which calibration follows)."""
    if len(model.inputs) == 1:
        return [0]
    interp = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert())
    names = [inp.name for inp in model.inputs]
    return [names.index(d["name"].removeprefix("serving_default_").split(":")[0]) for d in interp.get_input_details()]


def convert(model, spec: Spec) -> bytes:
    """Full-integer conversion (int8, or 16x8) with a seeded representative dataset."""
    shapes = [(1, *model.inputs[i].shape[1:]) for i in _converter_input_order(model)]
    rng = np.random.default_rng(SEED)
    data = [[_sample(rng, shape, spec.layout) for shape in shapes] for _ in range(SAMPLES)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative() -> Iterator[list[np.ndarray]]:
        yield from data

    conv.representative_dataset = representative
    if spec.mode == "int16x8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def describe(data: bytes) -> dict:
    """Inputs, outputs (shape, dtype, quantisation), operator counts and subgraph count of a .tflite."""
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    sub = model.subgraphs[0]

    def tensor(i: int) -> dict:
        t = sub.tensors[i]
        q = t.quantization
        scale = [float(s) for s in q.scale] if q is not None and q.scale is not None else []
        zero = [int(z) for z in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
        return {
            "name": t.name.decode(),
            "shape": [int(d) for d in t.shape],
            "dtype": type_names[t.type].lower(),
            "scale": scale[0] if len(scale) == 1 else scale,
            "zero_point": zero[0] if len(zero) == 1 else zero,
        }

    ops: Counter[str] = Counter()
    for op in sub.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        custom = builtin == schema.BuiltinOperator.CUSTOM
        ops[f"CUSTOM:{code.customCode.decode()}" if custom else op_names[builtin]] += 1
    return {
        "inputs": [tensor(i) for i in sub.inputs],
        "outputs": [tensor(i) for i in sub.outputs],
        "operators": dict(ops),
        "operator_count": sum(ops.values()),
        "subgraphs": len(model.subgraphs),
    }


def entry(spec: Spec, data: bytes, previous: dict | None) -> dict:
    """The MANIFEST.json record of one file (status fields kept from ``previous`` if the bytes are unchanged)."""
    info = describe(data)
    sha = hashlib.sha256(data).hexdigest()
    record = {
        "file": f"{spec.name}.tflite",
        "imitates": spec.imitates,
        "exercises": spec.exercises,
        "quantization": "int16x8 (int16 activations, int8 weights)" if spec.mode == "int16x8" else "int8",
        "notes": spec.notes,
        **info,
        "intended_ops_missing": [op for op in spec.intended_ops if op not in info["operators"]],
        "size_bytes": len(data),
        "sha256": sha,
    }
    keep = previous is not None and previous.get("sha256") == sha
    for key in STATUS_KEYS:
        record[key] = previous.get(key) if keep else None
    return record


def dump_manifest(manifest: dict) -> str:
    """MANIFEST.json text: indented, lists of numbers (shapes) on one line; check_tflite_corpus.py writes the same."""
    text = json.dumps(manifest, indent=2)
    return re.sub(r"\[\s*([-0-9.e,\s]*?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def build(spec: Spec) -> bytes:
    """The .tflite bytes of one model, independent of what was built before it in this process."""
    tf.keras.backend.clear_session()  # layer names, and so the bytes, must not depend on earlier models
    tf.keras.utils.set_random_seed(SEED)
    model = spec.build()
    _randomize(model, np.random.default_rng(SEED))
    return convert(model, spec)


def main(names: list[str]) -> None:
    """Build every model (or only ``names``, keeping the other manifest entries) and write MANIFEST.json."""
    unknown = set(names) - {spec.name for spec in SPECS}
    if unknown:
        raise SystemExit(f"unknown model(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    manifest_path = OUT / "MANIFEST.json"
    old = json.loads(manifest_path.read_text())["models"] if manifest_path.exists() else []
    previous = {m["file"]: m for m in old}
    records = []
    for spec in SPECS:
        file = f"{spec.name}.tflite"
        if names and spec.name not in names:
            if file in previous:
                records.append(previous[file])
            continue
        data = build(spec)
        (OUT / file).write_bytes(data)
        record = entry(spec, data, previous.get(file))
        records.append(record)
        missing = f", missing {record['intended_ops_missing']}" if record["intended_ops_missing"] else ""
        print(f"{file}: {len(data)} bytes, {record['operator_count']} ops{missing}", flush=True)
    manifest = {
        "generator": "scripts/make_tflite_corpus.py",
        "tensorflow": tf.__version__,
        "status_checker": "scripts/check_tflite_corpus.py",
        "models": records,
    }
    manifest_path.write_text(dump_manifest(manifest))
    print(f"total {sum(r['size_bytes'] for r in records)} bytes in {len(records)} files")


if __name__ == "__main__":
    main(sys.argv[1:])
