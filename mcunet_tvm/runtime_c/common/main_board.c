/*
 * Board harness: one inference on the input in expected.h, timed with the DWT cycle counter, the
 * output compared with the host reference's, the result printed on the console UART, e.g.
 *   mcunet: stm32f746g-disco output ok (bit-exact), 123456 cycles at 16000000 Hz (reset clock)
 * The core runs at its reset clock (board.h: BOARD_CLOCK_HZ); caches stay off.
 */
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "expected.h"
#include "mcunet_harness.h" /* the model's header, under the names this harness uses */

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static int8_t output[MCUNET_OUTPUT_BYTES];
static uint32_t step_cycles[MCUNET_NUM_STEPS + 1];
static uint32_t last;

/* The model's profiling hook (when compiled with MCUNET_PROFILE): cycles per step. */
void mcunet_step_done(int step) {
  uint32_t now = DWT_CYCCNT;
  if (step >= 0 && step <= MCUNET_NUM_STEPS) step_cycles[step] = now - last;
  last = now;
}

#ifdef MCUNET_STREAM_INPUT
void mcunet_read_input_rows(int32_t row0, int32_t rows, int8_t *dst) {
  const int8_t *src = expected_input + (uint32_t)row0 * MCUNET_INPUT_ROW_BYTES;
  for (uint32_t i = 0; i < (uint32_t)rows * MCUNET_INPUT_ROW_BYTES; ++i) dst[i] = src[i];
}
#endif

static void put_u32(uint32_t v) {
  char tmp[12];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) console_putc(tmp[--n]);
}

static void cycle_counter_on(void) {
  DEMCR |= 1u << 24; /* TRCENA */
#ifdef BOARD_DWT_LOCK
  DWT_LAR = 0xC5ACCE55u; /* Cortex-M7: unlock the DWT's registers */
#endif
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u; /* CYCCNTENA */
}

int main(void) {
  console_init();
  cycle_counter_on();
#if defined(MCUNET_PACKED_IO)
  mcunet_set_inputs(expected_input);
#elif !defined(MCUNET_STREAM_INPUT)
  for (uint32_t i = 0; i < MCUNET_INPUT_BYTES; ++i) mcunet_input()[i] = expected_input[i];
#endif
  uint32_t start = DWT_CYCCNT;
  last = start;
  int status = mcunet_invoke();
  uint32_t cycles = DWT_CYCCNT - start;
#ifdef MCUNET_PACKED_IO
  mcunet_get_outputs(output);
#else
  for (uint32_t i = 0; i < MCUNET_OUTPUT_BYTES; ++i) output[i] = mcunet_output()[i];
#endif
  uint32_t wrong = 0;
  for (uint32_t i = 0; i < MCUNET_OUTPUT_BYTES; ++i) wrong += output[i] != expected_output[i];
  console_puts("mcunet: " BOARD_NAME " output ");
  if (status != 0) {
    console_puts("FAILED (status ");
    put_u32((uint32_t)(status < 0 ? -status : status));
    console_puts(")");
  } else if (wrong) {
    console_puts("DIFFERS from the reference in ");
    put_u32(wrong);
    console_puts(" bytes");
  } else {
    console_puts("ok (bit-exact)");
  }
  console_puts(", ");
  put_u32(cycles);
  console_puts(" cycles at ");
  put_u32(BOARD_CLOCK_HZ);
  console_puts(" Hz\r\n");
  for (int i = 0; i < MCUNET_NUM_STEPS; ++i) {
    console_puts("  step ");
    put_u32((uint32_t)i);
    console_puts(": ");
    put_u32(step_cycles[i]);
    console_puts(" cycles\r\n");
  }
  return status;
}
