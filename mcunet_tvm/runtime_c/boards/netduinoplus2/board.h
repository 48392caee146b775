/* Netduino Plus 2 (STM32F405RG) on QEMU 7.2 (-M netduinoplus2). No instruction counter: QEMU models
   neither the DWT cycle counter nor a clocked SysTick on this machine (both read 0), so
   BOARD_COUNTER_ADDR stays undefined and the harness reports no instruction counts. */
#define BOARD_NAME "netduinoplus2"
