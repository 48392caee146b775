/* The board's console UART (console.c in the board's folder): polled, 8N1, both directions. */
#ifndef MCUNET_CONSOLE_H
#define MCUNET_CONSOLE_H
#include <stdint.h>

/* Transmitter and receiver on, the baud-rate divisor computed for the kernel clock `uart_hz` (the one
   clock_init reports as in use). */
void console_init(uint32_t uart_hz);
void console_putc(char c);
void console_puts(const char *text);
/* The next received byte (0..255), or -1 when none came within `polls` polls of the receiver. */
int console_getc(uint32_t polls);
#endif
