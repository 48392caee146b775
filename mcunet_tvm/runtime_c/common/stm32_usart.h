/* Polled STM32 USART/LPUART of the v2 register layout (STM32F7, H7, L4: CR1 at 0x00, BRR 0x0C, ISR
   0x1C, ICR 0x20, RDR 0x24, TDR 0x28) at BOARD_UART_BASE: what the STM32 boards' console.c share.
   ISR: ORE bit 3, RXNE 5, TC 6, TXE 7; ICR.ORECF bit 3; CR1: UE 0, RE 2, TE 3. */
#ifndef MCUNET_STM32_USART_H
#define MCUNET_STM32_USART_H
#include <stdint.h>

#include "board.h"

#define USART_CR1 (*(volatile uint32_t *)(BOARD_UART_BASE + 0x00u))
#define USART_BRR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x0Cu))
#define USART_ISR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x1Cu))
#define USART_ICR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x20u))
#define USART_RDR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x24u))
#define USART_TDR (*(volatile uint32_t *)(BOARD_UART_BASE + 0x28u))
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7)

static inline void stm32_usart_putc(char c) {
  while (!(USART_ISR & USART_ISR_TXE)) {
  }
  USART_TDR = (uint8_t)c;
}

/* Write `text`, then wait until the last byte has left the shift register. */
static inline void stm32_usart_puts(const char *text) {
  while (*text) stm32_usart_putc(*text++);
  while (!(USART_ISR & USART_ISR_TC)) {
  }
}

static inline int stm32_usart_getc(uint32_t polls) {
  for (uint32_t i = 0; i < polls; ++i) {
    uint32_t isr = USART_ISR;
    if (isr & USART_ISR_ORE) USART_ICR = USART_ISR_ORE; /* a lost byte: the frame's checksum will tell */
    if (isr & USART_ISR_RXNE) return (int)(USART_RDR & 0xFFu);
  }
  return -1;
}

/* Transmitter and receiver on at the divisor `brr` (after the board enabled the clocks and the pins). */
static inline void stm32_usart_enable(uint32_t brr) {
  USART_BRR = brr;
  USART_CR1 = (1u << 3) | (1u << 2) | (1u << 0); /* TE, RE, UE */
}
#endif
