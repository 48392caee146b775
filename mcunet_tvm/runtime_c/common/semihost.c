/* Arm semihosting calls used by the QEMU harness (no C library I/O needed). */
#include "semihost.h"

#include <string.h>

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_SEEK = 0x0A, SYS_EXIT_EXTENDED = 0x20 };

static int call(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

int sh_open(const char *path, int write) {
  uint32_t args[3] = {(uint32_t)(uintptr_t)path, write ? 5u /* "wb" */ : 1u /* "rb" */,
                      (uint32_t)strlen(path)};
  return call(SYS_OPEN, args);
}

int sh_read(int fd, void *buf, size_t len) {
  uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)len};
  return (int)len - call(SYS_READ, args);
}

int sh_write(int fd, const void *buf, size_t len) {
  uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)len};
  return (int)len - call(SYS_WRITE, args);
}

int sh_seek(int fd, uint32_t pos) {
  uint32_t args[2] = {(uint32_t)fd, pos};
  return call(SYS_SEEK, args);
}

void sh_close(int fd) {
  uint32_t args[1] = {(uint32_t)fd};
  call(SYS_CLOSE, args);
}

void sh_puts(const char *text) { call(SYS_WRITE0, text); }

void sh_exit(int status) {
  uint32_t args[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)status};
  call(SYS_EXIT_EXTENDED, args);
  for (;;) {
  }
}
