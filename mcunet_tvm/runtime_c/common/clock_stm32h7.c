/* STM32H743 clock set-up (RM0433): LDO supply, voltage scale 1 (VOS1: 400 MHz; 480 MHz would need
   VOS0), flash wait states, the source (HSI 64 MHz or HSE) -> PLL1 (DIVM1, DIVN1, DIVP1, DIVQ1 of
   board.h) -> sys_ck, the core (D1CPRE), AHB (HPRE) and APB prescalers, then the switch.
   PWR at 0x58024800: CR3 0x0C (BYPASS 0, LDOEN 1), CSR1 0x04 (ACTVOSRDY 13), D3CR 0x18 (VOS 15:14,
   VOSRDY 13). FLASH_ACR at 0x52002000: LATENCY 3:0, WRHIGHFREQ 5:4. RCC at 0x58024400: CR 0x00
   (HSEON 16, HSERDY 17, PLL1ON 24, PLL1RDY 25), CFGR 0x10 (SW 2:0 = 3: PLL1, SWS 5:3), D1CFGR 0x18
   (HPRE 3:0, D1PPRE 6:4, D1CPRE 11:8), D2CFGR 0x1C (D2PPRE1 6:4, D2PPRE2 10:8), D3CFGR 0x20 (D3PPRE
   6:4), PLLCKSELR 0x28 (PLLSRC 1:0: 0 HSI, 2 HSE; DIVM1 9:4), PLLCFGR 0x2C (PLL1FRACEN 0, PLL1VCOSEL 1
   = 0: wide VCO, PLL1RGE 3:2, DIVP1EN 16, DIVQ1EN 17, DIVR1EN 18), PLL1DIVR 0x30 (DIVN1 8:0, DIVP1
   15:9, DIVQ1 22:16, DIVR1 30:24, each the divider - 1). D1PPRE, D2PPRE1 and D3PPRE take the APB1
   divider of board.h, D2PPRE2 the APB2 one. */
#include <stdint.h>

#include "board.h"
#include "clock.h"

#define PWR_CSR1 (*(volatile uint32_t *)0x58024804u)
#define PWR_CR3 (*(volatile uint32_t *)0x5802480Cu)
#define PWR_D3CR (*(volatile uint32_t *)0x58024818u)
#define FLASH_ACR (*(volatile uint32_t *)0x52002000u)
#define RCC_CR (*(volatile uint32_t *)0x58024400u)
#define RCC_CFGR (*(volatile uint32_t *)0x58024410u)
#define RCC_D1CFGR (*(volatile uint32_t *)0x58024418u)
#define RCC_D2CFGR (*(volatile uint32_t *)0x5802441Cu)
#define RCC_D3CFGR (*(volatile uint32_t *)0x58024420u)
#define RCC_PLLCKSELR (*(volatile uint32_t *)0x58024428u)
#define RCC_PLLCFGR (*(volatile uint32_t *)0x5802442Cu)
#define RCC_PLL1DIVR (*(volatile uint32_t *)0x58024430u)

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define PLL1_REF_HZ (BOARD_CLOCK_SOURCE_HZ / BOARD_PLL_M)
/* PLL1RGE: the reference's range (1-2, 2-4, 4-8, 8-16 MHz) */
#define PLL1RGE (PLL1_REF_HZ >= 8000000u ? 3u : PLL1_REF_HZ >= 4000000u ? 2u : PLL1_REF_HZ >= 2000000u ? 1u : 0u)
/* flash programming delay at VOS1 for the AXI (AHB) clock: up to 70 MHz 0, up to 185 MHz 1, above 2 */
#define WRHIGHFREQ (BOARD_AHB_HZ > 185000000u ? 2u : BOARD_AHB_HZ > 70000000u ? 1u : 0u)

static board_clock fall_back(void) {
  RCC_CFGR &= ~7u; /* SW = HSI */
  (void)clock_wait(&RCC_CFGR, 7u << 3, 0u);
  RCC_D1CFGR = 0;
  RCC_D2CFGR = 0;
  RCC_D3CFGR = 0;
  RCC_CR &= ~(CR_PLL1ON | CR_HSEON);
  return clock_reset();
}

board_clock clock_init(void) {
  PWR_CR3 = (PWR_CR3 & ~1u) | (1u << 1); /* LDO on, no bypass: the supply configuration, written once */
  if (!clock_wait(&PWR_CSR1, 1u << 13, 1u << 13)) return clock_reset();
  PWR_D3CR = (PWR_D3CR & ~(3u << 14)) | (3u << 14); /* VOS1 */
  if (!clock_wait(&PWR_D3CR, 1u << 13, 1u << 13)) return clock_reset();
  FLASH_ACR = (FLASH_ACR & ~0x3Fu) | BOARD_FLASH_WAIT_STATES | (WRHIGHFREQ << 4);
  if ((FLASH_ACR & 0xFu) != BOARD_FLASH_WAIT_STATES) return fall_back();
#if BOARD_CLOCK_SOURCE_HSE
  RCC_CR |= CR_HSEON;
  if (!clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY)) return fall_back();
#endif
  RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 3u)) | (BOARD_PLL_M << 4) | (BOARD_CLOCK_SOURCE_HSE ? 2u : 0u);
  RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu) | (PLL1RGE << 2) | (7u << 16);
  RCC_PLL1DIVR = (BOARD_PLL_N - 1u) | ((BOARD_PLL_SYS - 1u) << 9) | ((BOARD_PLL_Q - 1u) << 16) | (1u << 24);
  RCC_CR |= CR_PLL1ON;
  if (!clock_wait(&RCC_CR, CR_PLL1RDY, CR_PLL1RDY)) return fall_back();
  RCC_D1CFGR = (stm32_hpre(BOARD_CORE_DIV) << 8) | (stm32_ppre(BOARD_APB1_DIV) << 4) | stm32_hpre(BOARD_AHB_DIV);
  RCC_D2CFGR = (stm32_ppre(BOARD_APB2_DIV) << 8) | (stm32_ppre(BOARD_APB1_DIV) << 4);
  RCC_D3CFGR = stm32_ppre(BOARD_APB1_DIV) << 4;
  RCC_CFGR = (RCC_CFGR & ~7u) | 3u; /* SW = PLL1 */
  if (!clock_wait(&RCC_CFGR, 7u << 3, 3u << 3)) return fall_back();
  return clock_nominal();
}
