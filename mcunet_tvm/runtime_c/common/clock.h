/* The core clock set-up (clock.c: runtime_c/common/clock_DRIVER.c of the board), to the frequency
   board.h derives from mcunet_tvm/boards.py. Every wait on a ready flag is bounded: when a flag
   never comes (a dead crystal; QEMU, whose STM32 RCC reads 0) the set-up is undone and the chip stays
   on its reset clock, which clock_init returns (nominal = 0), so that the UART divisor and the
   printed frequency are those actually in use. */
#ifndef MCUNET_CLOCK_H
#define MCUNET_CLOCK_H
#include <stdint.h>

#include "board.h"

typedef struct {
  uint32_t core_hz; /* the core clock in use */
  uint32_t uart_hz; /* the console UART's kernel clock in use */
  uint32_t nominal; /* 1: the set-up of board.h is in effect; 0: the reset clock */
} board_clock;

board_clock clock_init(void);

/* polls of a ready flag before giving up: far more than a crystal's start-up (ms) or a PLL's lock
   (about 100 us) take at the reset clock */
#define CLOCK_WAIT_POLLS 1000000u

/* Wait until (*reg & mask) == want, at most CLOCK_WAIT_POLLS polls; 1 when it came, 0 on time-out. */
static inline int clock_wait(volatile uint32_t *reg, uint32_t mask, uint32_t want) {
  for (uint32_t i = 0; i < CLOCK_WAIT_POLLS; ++i)
    if ((*reg & mask) == want) return 1;
  return 0;
}

static inline board_clock clock_reset(void) {
  board_clock c = {BOARD_RESET_HZ, BOARD_RESET_UART_HZ, 0u};
  return c;
}

static inline board_clock clock_nominal(void) {
  board_clock c = {BOARD_CORE_HZ, BOARD_UART_HZ, 1u};
  return c;
}

/* STM32 AHB prescaler field (HPRE, D1CPRE): /1 -> 0, /2 -> 8, /4 -> 9, /8 -> 10, /16 -> 11, /64 -> 12 ... */
static inline uint32_t stm32_hpre(uint32_t div) {
  uint32_t log2 = 0;
  while ((1u << log2) < div) ++log2;
  return log2 == 0 ? 0u : log2 <= 4 ? 7u + log2 : 6u + log2;
}

/* STM32 APB prescaler field (PPRE): /1 -> 0, /2 -> 4, /4 -> 5, /8 -> 6, /16 -> 7 */
static inline uint32_t stm32_ppre(uint32_t div) {
  uint32_t log2 = 0;
  while ((1u << log2) < div) ++log2;
  return log2 == 0 ? 0u : 3u + log2;
}
#endif
