/* Netduino Plus 2 (STM32F405RG) on QEMU 7.2 (-M netduinoplus2), for the semihosting harness
   (main_qemu.c): the instruction counter is TIM2 (qemu_counter.h, shared with the board project). */
#define BOARD_NAME "netduinoplus2"
#include "qemu_counter.h"
