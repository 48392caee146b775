/* STM32F746G-DISCO console: USART1, TX on PA9 and RX on PB7 (AF7) = the ST-LINK virtual COM port.
   RM0385: RCC at 0x40023800 (AHB1ENR 0x30: GPIOAEN bit 0, GPIOBEN bit 1; APB2ENR 0x44: USART1EN bit 4), GPIOA at
   0x40020000, GPIOB at 0x40020400, USART1 at 0x40011000 clocked by PCLK2 (uart_hz: what clock_init reports). */
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "stm32_usart.h"

#define RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define GPIOA_MODER (*(volatile uint32_t *)0x40020000u)
#define GPIOA_AFRH (*(volatile uint32_t *)0x40020024u)
#define GPIOB_MODER (*(volatile uint32_t *)0x40020400u)
#define GPIOB_AFRL (*(volatile uint32_t *)0x40020420u)

void console_putc(char c) { stm32_usart_putc(c); }

void console_puts(const char *text) { stm32_usart_puts(text); }

int console_getc(uint32_t polls) { return stm32_usart_getc(polls); }

void console_init(uint32_t uart_hz) {
  RCC_AHB1ENR |= (1u << 0) | (1u << 1);
  RCC_APB2ENR |= 1u << 4;
  (void)RCC_APB2ENR; /* read back: the clock is on before the peripheral is touched */
  GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18); /* PA9: alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);   /* PA9: AF7 = USART1_TX */
  GPIOB_MODER = (GPIOB_MODER & ~(3u << 14)) | (2u << 14); /* PB7: alternate function */
  GPIOB_AFRL = (GPIOB_AFRL & ~(0xFu << 28)) | (7u << 28); /* PB7: AF7 = USART1_RX */
  stm32_usart_enable((uart_hz + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD);
}
