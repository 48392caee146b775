// Minimal application used to measure TFLM + kernel flash size.
// Build variants (selected by -D on the command line):
//   (default)       : resolver with the 11 requested ops (default registrations)
//   OPS_INT8_ONLY   : same ops, but int8-specialised registrations where TFLM offers them
//   EMPTY_RESOLVER  : no ops registered (TFLM core: interpreter + allocator + planner)
//   BASELINE        : no TFLM at all (startup + newlib only)
#include <stdint.h>

extern const unsigned char g_model[];

#ifndef BASELINE
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

constexpr int kArenaSize = 64 * 1024;
alignas(16) static uint8_t tensor_arena[kArenaSize];

int main() {
  const tflite::Model* model = tflite::GetModel(g_model);
#ifdef EMPTY_RESOLVER
  tflite::MicroMutableOpResolver<1> resolver;
#else
  tflite::MicroMutableOpResolver<11> resolver;
#ifdef OPS_INT8_ONLY
  resolver.AddConv2D(tflite::Register_CONV_2D_INT8());
  resolver.AddDepthwiseConv2D(tflite::Register_DEPTHWISE_CONV_2D_INT8());
  resolver.AddAdd(tflite::Register_ADD_INT8());
  resolver.AddFullyConnected(tflite::Register_FULLY_CONNECTED_INT8());
  resolver.AddAveragePool2D(tflite::Register_AVERAGE_POOL_2D_INT8());
  resolver.AddSoftmax(tflite::Register_SOFTMAX_INT8());
#else
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddAdd();
  resolver.AddFullyConnected();
  resolver.AddAveragePool2D();
  resolver.AddSoftmax();
#endif
  resolver.AddMean();
  resolver.AddReshape();
  resolver.AddPad();
  resolver.AddQuantize();
  resolver.AddDequantize();
#endif
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena,
                                       kArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;
  TfLiteTensor* in = interpreter.input(0);
  in->data.int8[0] = 1;
  if (interpreter.Invoke() != kTfLiteOk) return 2;
  return interpreter.output(0)->data.int8[0];
}
#else
int main() { return g_model[0]; }
#endif
