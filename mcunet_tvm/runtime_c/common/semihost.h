/* Minimal Arm semihosting (bkpt 0xAB): files on the host and exit with a status. */
#ifndef MCUNET_SEMIHOST_H
#define MCUNET_SEMIHOST_H
#include <stddef.h>
#include <stdint.h>

int sh_open(const char *path, int write);          /* fd, or -1 */
int sh_read(int fd, void *buf, size_t len);        /* bytes read */
int sh_write(int fd, const void *buf, size_t len); /* bytes written */
int sh_seek(int fd, uint32_t pos);                 /* 0 on success */
void sh_close(int fd);
void sh_puts(const char *text);                    /* to the host's stdout */
void sh_exit(int status) __attribute__((noreturn));

#endif
