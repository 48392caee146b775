/* netduinoplus2 on QEMU 7.2: QEMU models neither the DWT cycle counter nor a clocked SysTick on this
   machine (both read 0), but its TIM2 (32-bit, at 0x40000000) counts virtual time at
   1 GHz / (PSC + 1): with PSC = 31 it advances by exactly 4 ticks per instruction under
   -icount shift=7, and wraps only after 2^30 instructions. */
#ifndef MCUNET_QEMU_COUNTER_H
#define MCUNET_QEMU_COUNTER_H
#define BOARD_TIM2(off) (*(volatile unsigned int *)(0x40000000u + (off)))
#define BOARD_COUNTER_ADDR 0x40000024u /* TIM2_CNT */
#define BOARD_COUNTER_HZ 31250000u
/* ARR = max, PSC = 31, EGR.UG (load PSC), CR1.CEN */
#define BOARD_COUNTER_INIT() \
  (BOARD_TIM2(0x2Cu) = 0xFFFFFFFFu, BOARD_TIM2(0x28u) = 31u, BOARD_TIM2(0x14u) = 1u, BOARD_TIM2(0x00u) = 1u)
#endif
