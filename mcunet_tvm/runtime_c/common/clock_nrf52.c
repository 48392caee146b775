/* nRF52840 clock (PS v1.7, CLOCK): the core always runs at 64 MHz; the high-frequency clock is switched
   from the internal RC (HFINT) to the 32 MHz crystal (HFXO) so that the UART's baud rate is accurate.
   CLOCK at 0x40000000: TASKS_HFCLKSTART 0x000, EVENTS_HFCLKSTARTED 0x100, HFCLKSTAT 0x40C (SRC bit 0:
   1 = crystal, STATE bit 16: running). The UARTE's baud rate does not depend on the source. */
#include <stdint.h>

#include "board.h"
#include "clock.h"

#define TASKS_HFCLKSTART (*(volatile uint32_t *)0x40000000u)
#define EVENTS_HFCLKSTARTED (*(volatile uint32_t *)0x40000100u)
#define HFCLKSTAT (*(volatile uint32_t *)0x4000040Cu)

board_clock clock_init(void) {
  EVENTS_HFCLKSTARTED = 0;
  TASKS_HFCLKSTART = 1;
  if (!clock_wait(&EVENTS_HFCLKSTARTED, 1u, 1u) || (HFCLKSTAT & 0x10001u) != 0x10001u) return clock_reset();
  return clock_nominal();
}
