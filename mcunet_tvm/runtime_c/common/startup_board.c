/* Cortex-M startup for real boards: vector table, FPU on, .data/.bss initialisation, main, then halt.
   No semihosting (without a debugger it would fault): a fault prints a line on the console and halts. */
#include "console.h"
#include "cortexm_start.h"

static void halt(void) __attribute__((noreturn));
static void halt(void) {
  for (;;) __asm__ volatile("wfi");
}

void Reset_Handler(void) {
  start_c_runtime();
  (void)main();
  halt();
}

void Fault_Handler(void) {
  console_puts("mcunet: hard fault\r\n");
  halt();
}
