/* Netduino Plus 2 (STM32F405RG) console: USART1, TX on PA9 and RX on PA10 (AF7); QEMU's first -serial.
   RM0090: RCC at 0x40023800 (AHB1ENR 0x30: GPIOAEN bit 0; APB2ENR 0x44: USART1EN bit 4), GPIOA at
   0x40020000 (MODER 0x00, AFRH 0x24), USART1 at 0x40011000 in the F4's v1 register layout: SR 0x00
   (ORE bit 3, RXNE 5, TC 6, TXE 7), DR 0x04, BRR 0x08 (mantissa and 1/16 fraction: f / baud with
   16x oversampling), CR1 0x0C (RE bit 2, TE 3, UE 13); clocked by PCLK2 (uart_hz). Reading SR then
   DR clears an overrun. */
#include <stdint.h>

#include "board.h"
#include "console.h"

#define RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define GPIOA_MODER (*(volatile uint32_t *)0x40020000u)
#define GPIOA_AFRH (*(volatile uint32_t *)0x40020024u)
#define USART_SR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x00u))
#define USART_DR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x04u))
#define USART_BRR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x08u))
#define USART_CR1 (*(volatile uint32_t *)(BOARD_UART_BASE + 0x0Cu))
#define SR_RXNE (1u << 5)
#define SR_TC (1u << 6)
#define SR_TXE (1u << 7)

void console_init(uint32_t uart_hz) {
  RCC_AHB1ENR |= 1u << 0;
  RCC_APB2ENR |= 1u << 4;
  (void)RCC_APB2ENR; /* read back: the clock is on before the peripheral is touched */
  GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);       /* PA9, PA10: alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (7u << 4) | (7u << 8); /* AF7: USART1_TX, USART1_RX */
  USART_BRR = (uart_hz + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD;
  USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2); /* UE, TE, RE */
}

void console_putc(char c) {
  while (!(USART_SR & SR_TXE)) {
  }
  USART_DR = (uint8_t)c;
}

void console_puts(const char *text) {
  while (*text) console_putc(*text++);
  while (!(USART_SR & SR_TC)) {
  }
}

int console_getc(uint32_t polls) {
  for (uint32_t i = 0; i < polls; ++i)
    if (USART_SR & SR_RXNE) return (int)(USART_DR & 0xFFu);
  return -1;
}
