"""Generate the .tflite test fixtures with the TensorFlow Lite converter.

Run once, outside the project's environment (TensorFlow is large and is never
needed at test time):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python scripts/make_tflite_fixtures.py

Writes into tests/fixtures/:
  tiny_cnn.tflite       full-integer int8: conv3x3/s2+relu6, depthwise+relu, 1x1 conv,
                        residual add, avg pool, max pool, global average pool (MEAN),
                        dense, softmax
  tiny_valid_cnn.tflite full-integer int8: 5x5 valid conv, 7x7 same conv, 5x5/s2 depthwise,
                        flatten (RESHAPE) and dense without softmax
  float_cnn.tflite      float32 (not quantised)            -> must be rejected clearly
  dynamic_range.tflite  weights-only int8 quantisation     -> must be rejected clearly
  unsupported_op.tflite full-integer int8 with a LOGISTIC (unsupported when written; now a table lookup)
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
L = tf.keras.layers


def tiny_cnn():
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    y = L.Conv2D(8, 1)(y)
    x = L.Add()([x, y])
    x = L.AveragePooling2D(2)(x)
    x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(5)(x)
    return tf.keras.Model(inp, L.Softmax()(x))


def tiny_valid_cnn():
    inp = tf.keras.Input((20, 20, 3), batch_size=1)
    x = L.Conv2D(6, 5, strides=2, padding="valid", activation="relu")(inp)
    x = L.Conv2D(10, 7, padding="same", activation="relu6")(x)
    x = L.DepthwiseConv2D(5, strides=2, padding="same")(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Dense(7)(x))


def wide_cnn():
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = L.Conv2D(64, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Dense(64)(x))


def unsupported_op():
    inp = tf.keras.Input((8, 8, 3), batch_size=1)
    x = L.Conv2D(4, 3, padding="same")(inp)
    x = L.Activation("sigmoid")(x)
    return tf.keras.Model(inp, L.Dense(3)(L.Flatten()(x)))


def convert(model, mode: str) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "dynamic"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        shape = [1, *model.input_shape[1:]]
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(32):
                yield [rng.uniform(-1, 1, shape).astype(np.float32)]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    files = {
        "tiny_cnn.tflite": convert(tiny_cnn(), "int8"),
        "tiny_valid_cnn.tflite": convert(tiny_valid_cnn(), "int8"),
        "float_cnn.tflite": convert(tiny_cnn(), "float"),
        "dynamic_range.tflite": convert(wide_cnn(), "dynamic"),
        "unsupported_op.tflite": convert(unsupported_op(), "int8"),
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
