/* nRF52840 DK console: UARTE0 at 0x40002000, TXD on P0.06 (the J-Link virtual COM port; RXD is
   P0.08, not used). nRF52840 PS: ENABLE 0x500 = 8, PSEL.TXD 0x50C, PSEL.RXD 0x514, BAUDRATE 0x524
   (0x01D60000 = 115200 baud), CONFIG 0x56C, TXD.PTR 0x544 / TXD.MAXCNT 0x548 (EasyDMA from RAM),
   TASKS_STARTTX 0x008, EVENTS_ENDTX 0x120; P0 at 0x50000000 (OUTSET 0x508, DIRSET 0x518). */
#include <stdint.h>

#include "board.h"
#include "console.h"

#define REG(off) (*(volatile uint32_t *)(BOARD_UART_BASE + (off)))
#define P0_OUTSET (*(volatile uint32_t *)0x50000508u)
#define P0_DIRSET (*(volatile uint32_t *)0x50000518u)
#define TX_PIN 6u

static char tx_buf[64]; /* EasyDMA reads RAM only: strings in flash are copied here */

static void send(uint32_t n) {
  REG(0x544) = (uint32_t)(uintptr_t)tx_buf;
  REG(0x548) = n;
  REG(0x120) = 0;
  REG(0x008) = 1;
  while (REG(0x120) == 0) {
  }
}

void console_init(void) {
  P0_OUTSET = 1u << TX_PIN; /* idle high before the UART takes the pin */
  P0_DIRSET = 1u << TX_PIN;
  REG(0x50C) = TX_PIN;
  REG(0x514) = 0xFFFFFFFFu; /* RXD disconnected */
  REG(0x524) = 0x01D60000u;
  REG(0x56C) = 0;
  REG(0x500) = 8;
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
