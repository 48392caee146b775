/*
 * QEMU harness: read input.bin, run one inference, write output.bin and stats.txt.
 *
 * Instruction count: QEMU runs with `-icount shift=7`, so every instruction
 * advances virtual time by 128 ns, and the board's free-running FPGAIO counter
 * (BOARD_COUNTER_HZ) advances by more than two ticks per instruction. The
 * number of instructions between two counter reads is therefore the unique
 * integer nearest to ticks / ticks_per_instruction. The counter is stamped
 * before the call, after every step of the model (MCUNET_PROFILE hook) and
 * after the return, so 32-bit wrap-around never loses time; the cost of one
 * stamp (measured on two back-to-back stamps) is subtracted from every
 * interval, so what is reported is exactly the inference's own instructions.
 *
 * A board whose counter must be started defines BOARD_COUNTER_INIT() (netduinoplus2: a timer); a
 * board without any counter leaves BOARD_COUNTER_ADDR undefined, writes no instruction lines to
 * stats.txt, and the run reports instructions as unknown.
 *
 * Stack: the stack below the caller is painted before the run; the deepest
 * overwritten word after it gives the high-water mark of the inference.
 */
#include <stdint.h>

#include "board.h"
#include "mcunet_harness.h" /* the model's header, under the names this harness uses */
#include "semihost.h"

#ifdef BOARD_COUNTER_ADDR
#define COUNTER (*(volatile uint32_t *)BOARD_COUNTER_ADDR)
#else
#define COUNTER 0u
#define BOARD_COUNTER_HZ 1u
#endif
#define PAINT 0xC0FFEE11u
/* ticks per instruction as a ratio: (2^7 ns * BOARD_COUNTER_HZ) / 1e9 */
#define TPI_NUM ((uint64_t)BOARD_COUNTER_HZ * 128u)
#define TPI_DEN 1000000000ull

extern uint32_t __stack_limit[];

#ifdef MCUNET_STREAM_INPUT
/* Streamed input: rows come from input.bin on the host as the model asks for them (as a camera
 * would deliver them); the whole input never sits in the device's SRAM. */
static int input_fd = -1;
static int input_ok = 1;

void mcunet_read_input_rows(int32_t row0, int32_t rows, int8_t *dst) {
  uint32_t n = (uint32_t)rows * MCUNET_INPUT_ROW_BYTES;
  if (sh_seek(input_fd, (uint32_t)row0 * MCUNET_INPUT_ROW_BYTES) != 0 || sh_read(input_fd, dst, n) != (int)n)
    input_ok = 0;
}
#else
static int8_t input[MCUNET_INPUT_BYTES];
#endif
static int8_t output[MCUNET_OUTPUT_BYTES];
/* counter value at the start (index 0), after each step (1..N) and after the return (N + 1) */
static uint32_t stamps[MCUNET_NUM_STEPS + 2];

/* Called by the model after every step (MCUNET_PROFILE), and around the call by this harness. */
__attribute__((noinline)) void mcunet_step_done(int step) { stamps[step + 1] = COUNTER; }

static uint64_t instructions(uint64_t ticks) { return (ticks * TPI_DEN + TPI_NUM / 2) / TPI_NUM; }

static void put_u64(char **p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *(*p)++ = tmp[--n];
}

static void put_line(int fd, const char *key, uint64_t value) {
  char line[64], *p = line;
  while (*key) *p++ = *key++;
  *p++ = ' ';
  put_u64(&p, value);
  *p++ = '\n';
  sh_write(fd, line, (size_t)(p - line));
}

static __attribute__((noinline)) uint32_t stack_pointer(void) {
  uint32_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

static __attribute__((noinline)) int run_painted(uint32_t *sp_at_call) {
  *sp_at_call = stack_pointer();
  mcunet_step_done(-1);
  int status = mcunet_invoke();
  mcunet_step_done(MCUNET_NUM_STEPS);
  return status;
}

int main(void) {
#ifdef BOARD_COUNTER_INIT
  BOARD_COUNTER_INIT();
#endif
#ifdef MCUNET_STREAM_INPUT
  input_fd = sh_open("input.bin", 0);
  if (input_fd < 0) {
    sh_puts("mcunet: cannot open input.bin\n");
    return 2;
  }
  int fd;
#else
  int fd = sh_open("input.bin", 0);
  if (fd < 0 || sh_read(fd, input, sizeof input) != (int)sizeof input) {
    sh_puts("mcunet: cannot read input.bin\n");
    return 2;
  }
  sh_close(fd);
#ifdef MCUNET_PACKED_IO
  mcunet_set_inputs(input); /* several inputs: one file, back to back in the model's order */
#else
  for (uint32_t i = 0; i < MCUNET_INPUT_BYTES; ++i) mcunet_input()[i] = input[i];
#endif
#endif

  /* instructions between two back-to-back marks: the cost of the measurement itself */
  mcunet_step_done(-1);
  mcunet_step_done(0);
  uint64_t overhead = instructions((uint32_t)(stamps[1] - stamps[0]));

  uint32_t *p = __stack_limit;
  uint32_t sp_here = stack_pointer();
  while ((uint32_t)(uintptr_t)p < sp_here - 256) *p++ = PAINT;

  uint32_t sp_at_call = 0;
  int status = run_painted(&sp_at_call);
  if (status <= -1000) {
    char msg[80] = "mcunet: arena guard bytes overwritten after step ", *m = msg + 49;
    put_u64(&m, (uint64_t)(-1000 - status));
    *m++ = '\n';
    *m = 0;
    sh_puts(msg);
    return 4;
  }

#ifdef MCUNET_STREAM_INPUT
  sh_close(input_fd);
  if (!input_ok) {
    sh_puts("mcunet: cannot read input rows from input.bin\n");
    return 2;
  }
#endif
  p = __stack_limit;
  while (*p == PAINT) ++p;
  uint32_t stack_bytes = sp_at_call - (uint32_t)(uintptr_t)p;

#ifdef MCUNET_PACKED_IO
  mcunet_get_outputs(output);
#else
  for (uint32_t i = 0; i < MCUNET_OUTPUT_BYTES; ++i) output[i] = mcunet_output()[i];
#endif
  fd = sh_open("output.bin", 1);
  sh_write(fd, output, sizeof output);
  sh_close(fd);

  fd = sh_open("stats.txt", 1);
  uint64_t total = 0;
  for (int i = 0; i <= MCUNET_NUM_STEPS; ++i) {
    uint64_t n = instructions((uint32_t)(stamps[i + 1] - stamps[i]));
    n = n > overhead ? n - overhead : 0;
    total += n;
    if (i == MCUNET_NUM_STEPS) break; /* the return from mcunet_invoke: in the total only */
#ifdef BOARD_COUNTER_ADDR
    char key[16] = "step", *k = key + 4;
    put_u64(&k, (uint64_t)i);
    *k = 0;
    put_line(fd, key, n);
#endif
  }
#ifdef BOARD_COUNTER_ADDR
  put_line(fd, "instructions", total);
#else
  (void)total;
#endif
  put_line(fd, "stack_bytes", stack_bytes);
  put_line(fd, "status", (uint64_t)(status != 0));
  sh_close(fd);
  return status == 0 ? 0 : 1;
}
