/* STM32L4R5 (L4+) clock set-up (RM0432): voltage range 1 in boost mode (R1MODE = 0, needed above
   80 MHz), the flash wait states, the source (HSI16 or HSE) -> main PLL (PLLM, PLLN, PLLR of board.h)
   -> SYSCLK; the switch goes through AHB /2 for 1 us, as the manual asks when going above 80 MHz.
   RCC at 0x40021000: CR 0x00 (HSION 8, HSIRDY 10, HSEON 16, HSERDY 17, PLLON 24, PLLRDY 25), CFGR 0x08
   (SW 1:0 = 3: PLL, SWS 3:2, HPRE 7:4, PPRE1 10:8, PPRE2 13:11), PLLCFGR 0x0C (PLLSRC 1:0: 2 HSI16,
   3 HSE; PLLM 7:4 = M - 1; PLLN 14:8; PLLQ 22:21 = Q/2 - 1; PLLREN 24; PLLR 26:25 = R/2 - 1), APB1ENR1
   0x58 (PWREN 28). PWR at 0x40007000: CR1 0x00 (VOS 10:9 = 1: range 1), SR2 0x14 (VOSF 10), CR5 0x80
   (R1MODE 8). FLASH_ACR at 0x40022000: LATENCY 3:0. */
#include <stdint.h>

#include "board.h"
#include "clock.h"

#define RCC_CR (*(volatile uint32_t *)0x40021000u)
#define RCC_CFGR (*(volatile uint32_t *)0x40021008u)
#define RCC_PLLCFGR (*(volatile uint32_t *)0x4002100Cu)
#define RCC_APB1ENR1 (*(volatile uint32_t *)0x40021058u)
#define PWR_CR1 (*(volatile uint32_t *)0x40007000u)
#define PWR_SR2 (*(volatile uint32_t *)0x40007014u)
#define PWR_CR5 (*(volatile uint32_t *)0x40007080u)
#define FLASH_ACR (*(volatile uint32_t *)0x40022000u)

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define CFGR_PRESCALERS 0x3FF0u /* HPRE, PPRE1, PPRE2 */

static board_clock fall_back(void) {
  RCC_CFGR &= ~(3u | CFGR_PRESCALERS); /* SW = MSI, the reset clock */
  (void)clock_wait(&RCC_CFGR, 3u << 2, 0u);
  RCC_CR &= ~(CR_PLLON | CR_HSEON);
  return clock_reset();
}

static void delay_polls(uint32_t n) {
  for (volatile uint32_t i = 0; i < n; ++i) {
  }
}

board_clock clock_init(void) {
  RCC_APB1ENR1 |= 1u << 28; /* PWREN */
  (void)RCC_APB1ENR1;
  PWR_CR1 = (PWR_CR1 & ~(3u << 9)) | (1u << 9); /* range 1 */
  if (!clock_wait(&PWR_SR2, 1u << 10, 0u)) return clock_reset();
#if BOARD_POWER_BOOST
  PWR_CR5 &= ~(1u << 8); /* R1MODE = 0: boost */
#endif
  FLASH_ACR = (FLASH_ACR & ~0xFu) | BOARD_FLASH_WAIT_STATES;
  if ((FLASH_ACR & 0xFu) != BOARD_FLASH_WAIT_STATES) return fall_back();
#if BOARD_CLOCK_SOURCE_HSE
  RCC_CR |= CR_HSEON;
  if (!clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY)) return fall_back();
#else
  RCC_CR |= CR_HSION;
  if (!clock_wait(&RCC_CR, CR_HSIRDY, CR_HSIRDY)) return fall_back();
#endif
  RCC_PLLCFGR = (BOARD_CLOCK_SOURCE_HSE ? 3u : 2u) | ((BOARD_PLL_M - 1u) << 4) | (BOARD_PLL_N << 8) |
                ((BOARD_PLL_Q / 2u - 1u) << 21) | (1u << 24) | ((BOARD_PLL_SYS / 2u - 1u) << 25);
  RCC_CR |= CR_PLLON;
  if (!clock_wait(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) return fall_back();
  RCC_CFGR = (RCC_CFGR & ~CFGR_PRESCALERS) | (stm32_hpre(2u) << 4) | (stm32_ppre(BOARD_APB1_DIV) << 8) |
             (stm32_ppre(BOARD_APB2_DIV) << 11);
  RCC_CFGR = (RCC_CFGR & ~3u) | 3u; /* SW = PLL, AHB at SYSCLK / 2 */
  if (!clock_wait(&RCC_CFGR, 3u << 2, 3u << 2)) return fall_back();
  delay_polls(BOARD_CORE_HZ / 2u / 1000000u); /* >= 1 us at SYSCLK / 2 (a poll takes several cycles) */
  RCC_CFGR = (RCC_CFGR & ~(0xFu << 4)) | (stm32_hpre(BOARD_CORE_DIV) << 4);
  return clock_nominal();
}
