/* nRF52840 DK console: UARTE0 at 0x40002000, TXD on P0.06 and RXD on P0.08 (the J-Link virtual COM
   port). nRF52840 PS: TASKS_STARTRX 0x000, TASKS_STARTTX 0x008, EVENTS_ENDRX 0x110, EVENTS_ENDTX
   0x120, ENABLE 0x500 = 8, PSEL.TXD 0x50C, PSEL.RXD 0x514, BAUDRATE 0x524 (0x01D60000 = 115200 baud,
   from the fixed 16 MHz peripheral clock), RXD.PTR 0x534 / RXD.MAXCNT 0x538, TXD.PTR 0x544 /
   TXD.MAXCNT 0x548 (EasyDMA from and to RAM), CONFIG 0x56C; P0 at 0x50000000 (OUTSET 0x508, DIRSET
   0x518). Reception is one byte per EasyDMA transfer, re-armed as soon as a byte is taken. */
#include <stdint.h>

#include "board.h"
#include "console.h"

#define REG(off) (*(volatile uint32_t *)(BOARD_UART_BASE + (off)))
#define P0_OUTSET (*(volatile uint32_t *)0x50000508u)
#define P0_DIRSET (*(volatile uint32_t *)0x50000518u)
#define TX_PIN 6u
#define RX_PIN 8u

static char tx_buf[64]; /* EasyDMA reads RAM only: strings in flash are copied here */
static volatile uint8_t rx_buf[1];

static void send(uint32_t n) {
  REG(0x544) = (uint32_t)(uintptr_t)tx_buf;
  REG(0x548) = n;
  REG(0x120) = 0;
  REG(0x008) = 1;
  while (REG(0x120) == 0) {
  }
}

static void arm_rx(void) {
  REG(0x534) = (uint32_t)(uintptr_t)rx_buf;
  REG(0x538) = 1;
  REG(0x110) = 0;
  REG(0x000) = 1;
}

void console_init(uint32_t uart_hz) {
  (void)uart_hz; /* the baud-rate generator runs from the fixed 16 MHz peripheral clock */
  P0_OUTSET = 1u << TX_PIN; /* idle high before the UART takes the pin */
  P0_DIRSET = 1u << TX_PIN;
  REG(0x50C) = TX_PIN;
  REG(0x514) = RX_PIN;
  REG(0x524) = 0x01D60000u;
  REG(0x56C) = 0;
  REG(0x500) = 8;
  arm_rx();
}

void console_putc(char c) {
  tx_buf[0] = c;
  send(1);
}

void console_puts(const char *text) {
  uint32_t n = 0;
  while (*text) {
    tx_buf[n++] = *text++;
    if (n == sizeof tx_buf) {
      send(n);
      n = 0;
    }
  }
  if (n) send(n);
}

int console_getc(uint32_t polls) {
  for (uint32_t i = 0; i < polls; ++i) {
    if (REG(0x110)) {
      int c = rx_buf[0];
      arm_rx();
      return c;
    }
  }
  return -1;
}
