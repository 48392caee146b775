/*
 * Board harness. After reset: the clock set-up (clock.c), the console, then one self-check, an
 * inference on the input in expected.h compared with the host reference's output, printed as one
 * line on the console, e.g.
 *   mcunet: stm32f746g-disco output ok (bit-exact), 123456 cycles at 216000000 Hz (PLL)
 * (the no-host mode: a terminal on the UART shows it), then the board serves the host forever with
 * the framed protocol of mcunet_tvm/board_link.py (python -m mcunet_tvm.run):
 *
 *   0xA5 0x5A | type (1 byte) | length N (u32 LE) | payload (N bytes) | CRC-32 of type..payload (u32 LE)
 *
 *   host 'P' (ping, N = 0)      -> board 'I': u32 version, core Hz, clock nominal (1) or reset (0),
 *                                   counter kind, input bytes, output bytes, steps; the board's name
 *   host 'X' (the input bytes)  -> board 'R': i32 status, u32 counter kind, total count, core Hz,
 *                                   steps, the count of every step; the output bytes
 *   anything wrong              -> board 'E': u32 code (1 checksum, 2 length, 3 type, 4 time-out), text
 *
 * The CRC is IEEE 802.3 (zlib.crc32). Counter kinds: 1 core cycles (DWT), 2 instructions (no DWT,
 * as on QEMU: TIM2 under -icount shift=7, qemu_counter.h), 0 none. Caches stay off.
 */
#include <stdint.h>

#include "board.h"
#include "clock.h"
#include "console.h"
#include "expected.h"
#include "mcunet_harness.h" /* the model's header, under the names this harness uses */

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

#define PROTOCOL_VERSION 1u
#define COUNTER_NONE 0u
#define COUNTER_CYCLES 1u
#define COUNTER_INSTRUCTIONS 2u
#define ERR_CHECKSUM 1u
#define ERR_LENGTH 2u
#define ERR_TYPE 3u
#define ERR_TIMEOUT 4u

static int8_t output[MCUNET_OUTPUT_BYTES];
static uint32_t step_counts[MCUNET_NUM_STEPS + 1];
static uint32_t last;
static uint32_t counter_kind;
static board_clock clk;
static uint32_t byte_polls; /* polls of the receiver before a frame's next byte is given up (about 1 s) */

#if defined(MCUNET_PACKED_IO) || defined(MCUNET_STREAM_INPUT)
static int8_t rx_input[MCUNET_INPUT_BYTES];
#define RX_INPUT rx_input
#else
#define RX_INPUT mcunet_input() /* received straight into the model's input tensor */
#endif
static const int8_t *current_input;

static uint32_t count_now(void) {
#ifdef BOARD_COUNTER_ADDR
  if (counter_kind == COUNTER_INSTRUCTIONS) return *(volatile uint32_t *)BOARD_COUNTER_ADDR;
#endif
  return DWT_CYCCNT;
}

/* A raw count as reported: cycles as they are; QEMU timer ticks as instructions (1 per 128 ns). */
static uint32_t as_reported(uint32_t count) {
#ifdef BOARD_COUNTER_ADDR
  if (counter_kind == COUNTER_INSTRUCTIONS)
    return (uint32_t)(((uint64_t)count * 1000000000ull + BOARD_COUNTER_HZ * 64ull) / (BOARD_COUNTER_HZ * 128ull));
#endif
  return count;
}

/* The model's profiling hook (when compiled with MCUNET_PROFILE): the count of every step. */
void mcunet_step_done(int step) {
  uint32_t now = count_now();
  if (step >= 0 && step <= MCUNET_NUM_STEPS) step_counts[step] = now - last;
  last = now;
}

#ifdef MCUNET_STREAM_INPUT
void mcunet_read_input_rows(int32_t row0, int32_t rows, int8_t *dst) {
  const int8_t *src = current_input + (uint32_t)row0 * MCUNET_INPUT_ROW_BYTES;
  for (uint32_t i = 0; i < (uint32_t)rows * MCUNET_INPUT_ROW_BYTES; ++i) dst[i] = src[i];
}
#endif

/* The DWT cycle counter when it counts; else (QEMU) the board's instruction counter, if it has one. */
static void counter_on(void) {
  DEMCR |= 1u << 24; /* TRCENA */
#ifdef BOARD_DWT_LOCK
  DWT_LAR = 0xC5ACCE55u; /* Cortex-M7: unlock the DWT's registers */
#endif
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u; /* CYCCNTENA */
  uint32_t before = DWT_CYCCNT;
  for (volatile int i = 0; i < 8; ++i) {
  }
  counter_kind = DWT_CYCCNT != before ? COUNTER_CYCLES : COUNTER_NONE;
#ifdef BOARD_COUNTER_INIT
  if (counter_kind == COUNTER_NONE) {
    BOARD_COUNTER_INIT();
    counter_kind = COUNTER_INSTRUCTIONS;
  }
#endif
}

/* One inference on `in` (MCUNET_INPUT_BYTES); its status and total count. */
static int infer(const int8_t *in, uint32_t *total) {
  current_input = in;
#if defined(MCUNET_PACKED_IO)
  mcunet_set_inputs(in);
#elif !defined(MCUNET_STREAM_INPUT)
  int8_t *dst = mcunet_input();
  if (dst != in)
    for (uint32_t i = 0; i < MCUNET_INPUT_BYTES; ++i) dst[i] = in[i];
#endif
  uint32_t start = count_now();
  last = start;
  int status = mcunet_invoke();
  *total = as_reported(count_now() - start);
  for (int i = 0; i < MCUNET_NUM_STEPS; ++i) step_counts[i] = as_reported(step_counts[i]);
#ifdef MCUNET_PACKED_IO
  mcunet_get_outputs(output);
#else
  for (uint32_t i = 0; i < MCUNET_OUTPUT_BYTES; ++i) output[i] = mcunet_output()[i];
#endif
  return status;
}

static void put_u32(uint32_t v) {
  char tmp[12];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) console_putc(tmp[--n]);
}

static void self_check(void) {
  uint32_t total = 0;
  int status = infer(expected_input, &total);
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
  put_u32(total);
  console_puts(counter_kind == COUNTER_INSTRUCTIONS ? " instructions (no cycle counter), core at "
                                                    : counter_kind == COUNTER_CYCLES ? " cycles at " : " (no counter), core at ");
  put_u32(clk.core_hz);
  console_puts(clk.nominal ? " Hz (PLL)\r\n" : " Hz (reset clock: the clock set-up did not complete)\r\n");
  for (int i = 0; i < MCUNET_NUM_STEPS; ++i) {
    console_puts("  step ");
    put_u32((uint32_t)i);
    console_puts(": ");
    put_u32(step_counts[i]);
    console_puts("\r\n");
  }
}

/* ---- frames ---- */

static uint32_t crc_byte(uint32_t crc, uint8_t b) {
  crc ^= b;
  for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  return crc;
}

static uint32_t tx_crc;

static void tx_bytes(const void *data, uint32_t n) {
  const uint8_t *p = (const uint8_t *)data;
  for (uint32_t i = 0; i < n; ++i) {
    tx_crc = crc_byte(tx_crc, p[i]);
    console_putc((char)p[i]);
  }
}

static void tx_u32(uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  tx_bytes(b, 4);
}

static void tx_begin(char type, uint32_t length) {
  console_putc((char)0xA5);
  console_putc((char)0x5A);
  tx_crc = 0xFFFFFFFFu;
  tx_bytes(&type, 1);
  tx_u32(length);
}

static void tx_end(void) {
  uint32_t crc = ~tx_crc;
  tx_u32(crc);
}

static uint32_t text_length(const char *text) {
  uint32_t n = 0;
  while (text[n]) ++n;
  return n;
}

static void send_error(uint32_t code, const char *text) {
  uint32_t n = text_length(text);
  tx_begin('E', 4 + n);
  tx_u32(code);
  tx_bytes(text, n);
  tx_end();
}

static void send_info(void) {
  uint32_t n = text_length(BOARD_NAME);
  tx_begin('I', 7 * 4 + n);
  tx_u32(PROTOCOL_VERSION);
  tx_u32(clk.core_hz);
  tx_u32(clk.nominal);
  tx_u32(counter_kind);
  tx_u32(MCUNET_INPUT_BYTES);
  tx_u32(MCUNET_OUTPUT_BYTES);
  tx_u32(MCUNET_NUM_STEPS);
  tx_bytes(BOARD_NAME, n);
  tx_end();
}

static void send_result(int status, uint32_t total) {
  tx_begin('R', 5 * 4 + MCUNET_NUM_STEPS * 4 + MCUNET_OUTPUT_BYTES);
  tx_u32((uint32_t)status);
  tx_u32(counter_kind);
  tx_u32(total);
  tx_u32(clk.core_hz);
  tx_u32(MCUNET_NUM_STEPS);
  for (int i = 0; i < MCUNET_NUM_STEPS; ++i) tx_u32(step_counts[i]);
  tx_bytes(output, MCUNET_OUTPUT_BYTES);
  tx_end();
}

/* A frame's byte, or -1 after about a second without one. */
static int rx_byte(uint32_t *crc) {
  int c = console_getc(byte_polls);
  if (c >= 0) *crc = crc_byte(*crc, (uint8_t)c);
  return c;
}

/* Receive one frame and answer it. */
static void serve(void) {
  int c;
  do { /* the start marker; anything before it is skipped */
    while ((c = console_getc(byte_polls)) != 0xA5) {
    }
    c = console_getc(byte_polls);
  } while (c != 0x5A);
  uint32_t crc = 0xFFFFFFFFu, length = 0;
  int type = rx_byte(&crc);
  for (int k = 0; k < 4 && type >= 0; ++k) {
    c = rx_byte(&crc);
    if (c < 0) type = -1;
    length |= (uint32_t)(c & 0xFF) << (8 * k);
  }
  if (type < 0) {
    send_error(ERR_TIMEOUT, "the frame's header stopped");
    return;
  }
  uint8_t *dst = (uint8_t *)RX_INPUT;
  uint32_t capacity = type == 'X' ? MCUNET_INPUT_BYTES : 0;
  for (uint32_t i = 0; i < length; ++i) { /* a wrong length is read to its end, to stay in step */
    c = rx_byte(&crc);
    if (c < 0) {
      send_error(ERR_TIMEOUT, "the frame stopped before its length");
      return;
    }
    if (i < capacity) dst[i] = (uint8_t)c;
  }
  uint32_t sent = 0;
  for (int k = 0; k < 4; ++k) {
    c = console_getc(byte_polls);
    if (c < 0) {
      send_error(ERR_TIMEOUT, "the frame's checksum is missing");
      return;
    }
    sent |= (uint32_t)c << (8 * k);
  }
  if (sent != ~crc) {
    send_error(ERR_CHECKSUM, "bad checksum");
  } else if (type == 'P' && length == 0) {
    send_info();
  } else if (type == 'X' && length == MCUNET_INPUT_BYTES) {
    uint32_t total = 0;
    int status = infer((const int8_t *)RX_INPUT, &total);
    send_result(status, total);
  } else if (type == 'P' || type == 'X') {
    send_error(ERR_LENGTH, "wrong payload length");
  } else {
    send_error(ERR_TYPE, "unknown frame type");
  }
}

int main(void) {
  clk = clock_init();
  console_init(clk.uart_hz);
  byte_polls = clk.core_hz / 4u;
  counter_on();
  self_check();
  for (;;) serve();
}
