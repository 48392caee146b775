/* Cortex-M startup for real boards: vector table, FPU on, .data/.bss initialisation, main, then halt.
   No semihosting (without a debugger it would fault): a fault prints a line on the console and halts. */
#include <stdint.h>
#include <string.h>

#include "console.h"

extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
int main(void);

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler,
    Fault_Handler,
};

static void halt(void) __attribute__((noreturn));
static void halt(void) {
  for (;;) __asm__ volatile("wfi");
}

void Reset_Handler(void) {
#if defined(__ARM_FP)
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10/CP11 (the FPU) */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
  memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
  (void)main();
  halt();
}

void Fault_Handler(void) {
  console_puts("mcunet: hard fault\r\n");
  halt();
}
