/* Cortex-M startup (QEMU): vector table, .data/.bss initialisation, faults reported over semihosting. */
#include "cortexm_start.h"
#include "semihost.h"

void Reset_Handler(void) {
  start_c_runtime();
  sh_exit(main());
}

void Fault_Handler(void) {
  sh_puts("mcunet: hard fault (bad memory access or undefined instruction)\n");
  sh_exit(3);
}
