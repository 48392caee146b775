/* What every Cortex-M startup here shares (included once, by startup.c or startup_board.c, which
   define Reset_Handler and Fault_Handler): the vector table, and the C run time's set-up before main. */
#ifndef MCUNET_CORTEXM_START_H
#define MCUNET_CORTEXM_START_H
#include <stdint.h>
#include <string.h>

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

/* FPU and Helium on, .data copied from flash, .bss zeroed. */
static inline void start_c_runtime(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  /* full access to the FPU and Helium (coprocessors 10 and 11) before any code may use them */
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
  memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
}
#endif
