/* NUCLEO-L4R5ZI console: LPUART1, TX on PG7 and RX on PG8 (AF8) = the ST-LINK virtual COM port.
   RM0432: RCC at 0x40021000 (AHB2ENR 0x4C: GPIOGEN bit 6; APB1ENR1 0x58: PWREN bit 28; APB1ENR2
   0x5C: LPUART1EN bit 0); PG2..PG15 are powered from VDDIO2, enabled by PWR_CR2 (0x40007004) IOSV
   bit 9; GPIOG at 0x48001800; LPUART1 at 0x40008000 clocked by PCLK1 (uart_hz: what clock_init reports),
   BRR = 256 * f / baud. */
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "stm32_usart.h"

#define RCC_AHB2ENR (*(volatile uint32_t *)0x4002104Cu)
#define RCC_APB1ENR1 (*(volatile uint32_t *)0x40021058u)
#define RCC_APB1ENR2 (*(volatile uint32_t *)0x4002105Cu)
#define PWR_CR2 (*(volatile uint32_t *)0x40007004u)
#define GPIOG_MODER (*(volatile uint32_t *)0x48001800u)
#define GPIOG_AFRL (*(volatile uint32_t *)0x48001820u)
#define GPIOG_AFRH (*(volatile uint32_t *)0x48001824u)

void console_putc(char c) { stm32_usart_putc(c); }

void console_puts(const char *text) { stm32_usart_puts(text); }

int console_getc(uint32_t polls) { return stm32_usart_getc(polls); }

void console_init(uint32_t uart_hz) {
  RCC_APB1ENR1 |= 1u << 28;
  (void)RCC_APB1ENR1;
  PWR_CR2 |= 1u << 9; /* IOSV: VDDIO2 valid, port G usable */
  RCC_AHB2ENR |= 1u << 6;
  RCC_APB1ENR2 |= 1u << 0;
  (void)RCC_APB1ENR2;
  GPIOG_MODER = (GPIOG_MODER & ~(3u << 14)) | (2u << 14);  /* PG7: alternate function */
  GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << 28)) | (8u << 28);  /* PG7: AF8 = LPUART1_TX */
  GPIOG_MODER = (GPIOG_MODER & ~(3u << 16)) | (2u << 16);  /* PG8: alternate function */
  GPIOG_AFRH = (GPIOG_AFRH & ~0xFu) | 8u;                  /* PG8: AF8 = LPUART1_RX */
  stm32_usart_enable((uint32_t)((256ull * uart_hz + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD));
}
