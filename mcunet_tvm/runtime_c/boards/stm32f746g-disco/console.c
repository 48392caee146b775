/* STM32F746G-DISCO console: USART1, TX on PA9 (AF7) = the ST-LINK virtual COM port (RX is PB7).
   RM0385: RCC at 0x40023800 (AHB1ENR 0x30: GPIOAEN bit 0; APB2ENR 0x44: USART1EN bit 4), GPIOA at
   0x40020000, USART1 at 0x40011000 clocked by PCLK2 = HSI 16 MHz after reset. */
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "stm32_usart.h"

#define RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define GPIOA_MODER (*(volatile uint32_t *)0x40020000u)
#define GPIOA_AFRH (*(volatile uint32_t *)0x40020024u)

void console_putc(char c) { stm32_usart_putc(c); }

void console_puts(const char *text) { stm32_usart_puts(text); }

void console_init(void) {
  RCC_AHB1ENR |= 1u << 0;
  RCC_APB2ENR |= 1u << 4;
  (void)RCC_APB2ENR; /* read back: the clock is on before the peripheral is touched */
  GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18); /* PA9: alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);   /* PA9: AF7 = USART1_TX */
  stm32_usart_enable((BOARD_UART_CLOCK_HZ + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD);
}
