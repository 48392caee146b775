/* STM32F405 / STM32F746 clock set-up (RM0090, RM0385): the source (HSE crystal) -> main PLL (M, N,
   P, Q of board.h) -> SYSCLK, with voltage scale 1 (and the F7's over-drive), the flash wait states
   and the APB prescalers set before the switch.
   RCC at 0x40023800: CR 0x00 (HSEON 16, HSERDY 17, PLLON 24, PLLRDY 25), PLLCFGR 0x04 (PLLM 5:0,
   PLLN 14:6, PLLP 17:16 = P/2 - 1, PLLSRC 22 = HSE, PLLQ 27:24), CFGR 0x08 (SW 1:0 = 2: PLL, SWS
   3:2, HPRE 7:4, PPRE1 12:10, PPRE2 15:13), APB1ENR 0x40 (PWREN 28). PWR at 0x40007000: CR(1) 0x00
   (F4: VOS bit 14; F7: VOS 15:14, ODEN 16, ODSWEN 17), CSR(1) 0x04 (F7: ODRDY 16, ODSWRDY 17).
   FLASH_ACR at 0x40023C00: LATENCY 3:0 (F4: PRFTEN 8, ICEN 9, DCEN 10 on; F7: ART and caches off). */
#include <stdint.h>

#include "board.h"
#include "clock.h"

#define RCC_CR (*(volatile uint32_t *)0x40023800u)
#define RCC_PLLCFGR (*(volatile uint32_t *)0x40023804u)
#define RCC_CFGR (*(volatile uint32_t *)0x40023808u)
#define RCC_APB1ENR (*(volatile uint32_t *)0x40023840u)
#define PWR_CR (*(volatile uint32_t *)0x40007000u)
#define PWR_CSR (*(volatile uint32_t *)0x40007004u)
#define FLASH_ACR (*(volatile uint32_t *)0x40023C00u)

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_FIELDS 0x0F437FFFu /* PLLM, PLLN, PLLP, PLLSRC, PLLQ: the reserved bits keep their value */
#define CFGR_PRESCALERS 0xFCF0u    /* HPRE, PPRE1, PPRE2 */

/* Undo the set-up (SYSCLK back on HSI, prescalers /1, PLL and HSE off): the reset clock. */
static board_clock fall_back(void) {
  RCC_CFGR &= ~(3u | CFGR_PRESCALERS);
  (void)clock_wait(&RCC_CFGR, 3u << 2, 0u);
  RCC_CR &= ~(CR_PLLON | CR_HSEON);
  return clock_reset();
}

board_clock clock_init(void) {
  RCC_APB1ENR |= 1u << 28; /* PWREN */
  (void)RCC_APB1ENR;
#ifdef BOARD_SERIES_STM32F7
  PWR_CR |= 3u << 14; /* VOS = 11: scale 1 */
#else
  PWR_CR |= 1u << 14; /* VOS = 1: scale 1 */
#endif
#if BOARD_CLOCK_SOURCE_HSE
  RCC_CR |= CR_HSEON;
  if (!clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY)) return fall_back();
#endif
  RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_FIELDS) | BOARD_PLL_M | (BOARD_PLL_N << 6) |
                ((BOARD_PLL_SYS / 2u - 1u) << 16) | (BOARD_CLOCK_SOURCE_HSE << 22) | (BOARD_PLL_Q << 24);
  RCC_CR |= CR_PLLON;
  if (!clock_wait(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) return fall_back();
#if BOARD_POWER_OVERDRIVE
  PWR_CR |= 1u << 16; /* ODEN */
  if (!clock_wait(&PWR_CSR, 1u << 16, 1u << 16)) return fall_back();
  PWR_CR |= 1u << 17; /* ODSWEN */
  if (!clock_wait(&PWR_CSR, 1u << 17, 1u << 17)) return fall_back();
#endif
#ifdef BOARD_SERIES_STM32F7
  FLASH_ACR = (FLASH_ACR & ~0xFu) | BOARD_FLASH_WAIT_STATES;
#else
  FLASH_ACR = (FLASH_ACR & ~0x70Fu) | BOARD_FLASH_WAIT_STATES | (7u << 8); /* PRFTEN, ICEN, DCEN */
#endif
  if ((FLASH_ACR & 0xFu) != BOARD_FLASH_WAIT_STATES) return fall_back();
  RCC_CFGR = (RCC_CFGR & ~CFGR_PRESCALERS) | (stm32_hpre(BOARD_CORE_DIV) << 4) |
             (stm32_ppre(BOARD_APB1_DIV) << 10) | (stm32_ppre(BOARD_APB2_DIV) << 13);
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u; /* SW = PLL */
  if (!clock_wait(&RCC_CFGR, 3u << 2, 2u << 2)) return fall_back();
  return clock_nominal();
}
