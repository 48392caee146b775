/* NUCLEO-H743ZI console: USART3, TX on PD8 and RX on PD9 (AF7) = the ST-LINK virtual COM port.
   RM0433: RCC at 0x58024400 (AHB4ENR 0xE0: GPIODEN bit 3; APB1LENR 0xE8: USART3EN bit 18), GPIOD
   at 0x58020C00, USART3 at 0x40004800 clocked by PCLK1 (uart_hz: what clock_init reports). */
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "stm32_usart.h"

#define RCC_AHB4ENR (*(volatile uint32_t *)0x580244E0u)
#define RCC_APB1LENR (*(volatile uint32_t *)0x580244E8u)
#define GPIOD_MODER (*(volatile uint32_t *)0x58020C00u)
#define GPIOD_AFRH (*(volatile uint32_t *)0x58020C24u)

void console_putc(char c) { stm32_usart_putc(c); }

void console_puts(const char *text) { stm32_usart_puts(text); }

int console_getc(uint32_t polls) { return stm32_usart_getc(polls); }

void console_init(uint32_t uart_hz) {
  RCC_AHB4ENR |= 1u << 3;
  RCC_APB1LENR |= 1u << 18;
  (void)RCC_APB1LENR; /* read back: the clock is on before the peripheral is touched */
  GPIOD_MODER = (GPIOD_MODER & ~(3u << 16)) | (2u << 16); /* PD8: alternate function */
  GPIOD_MODER = (GPIOD_MODER & ~(3u << 18)) | (2u << 18); /* PD9: alternate function */
  GPIOD_AFRH = (GPIOD_AFRH & ~0xFu) | 7u;                 /* PD8: AF7 = USART3_TX */
  GPIOD_AFRH = (GPIOD_AFRH & ~0xF0u) | (7u << 4);          /* PD9: AF7 = USART3_RX */
  stm32_usart_enable((uart_hz + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD);
}
