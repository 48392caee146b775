/* Host harness: mcunet-host INPUT.bin OUTPUT.bin */
#include <stdio.h>

#include "mcunet_harness.h" /* the model's header, under the names this harness uses */

int main(int argc, char **argv) {
  static int8_t input[MCUNET_INPUT_BYTES], output[MCUNET_OUTPUT_BYTES];
  if (argc != 3) {
    fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(input, 1, sizeof input, f) != sizeof input) {
    fprintf(stderr, "cannot read %zu bytes from %s\n", sizeof input, argv[1]);
    return 2;
  }
  fclose(f);
#ifdef MCUNET_PACKED_IO
  mcunet_set_inputs(input); /* several inputs: one file, back to back in the model's order */
  int status = mcunet_invoke();
  mcunet_get_outputs(output);
#else
  int status = mcunet_run(input, output);
#endif
  f = fopen(argv[2], "wb");
  if (!f || fwrite(output, 1, sizeof output, f) != sizeof output) {
    fprintf(stderr, "cannot write %s\n", argv[2]);
    return 2;
  }
  fclose(f);
  return status == 0 ? 0 : 1;
}
