/* The board's console UART (console.c in the board's folder): transmit only, polled, 8N1. */
#ifndef MCUNET_CONSOLE_H
#define MCUNET_CONSOLE_H
void console_init(void);
void console_putc(char c);
void console_puts(const char *text);
#endif
