/*
 * Dual 16-bit MAC primitives used by mcunet-tvm's SIMD kernels.
 *
 * On cores with the DSP extension (Cortex-M4/M7/M33/M55) they are the ACLE
 * intrinsics of GCC's <arm_acle.h> (SMLAD, SXTB16, SXTAB16, SMLABB, SMLABT, SMLATB, SMLATT)
 * plus SXTAB16/SXTB16 with the byte rotation folded in (GCC does not fold
 * it) and SMMLAR (no ACLE intrinsic), which requantisation uses. Elsewhere (the host, cores without DSP) the same functions are plain
 * C with identical results, so the SIMD kernels are testable anywhere.
 *
 * Lane convention: a 32-bit word holds bytes b0..b3. SXTB16 gives the
 * halfword pair (b0, b2), SXTB16 rotated by 8 gives (b1, b3); SMLAD adds the
 * two halfword products to an accumulator.
 */
#ifndef MCUNET_SIMD_H
#define MCUNET_SIMD_H
#include <stdint.h>
#include <string.h>

#if (defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP) || (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

/*
 * Kernels whose straight-line multiply-accumulates already keep every register busy compile
 * without GCC's instruction scheduling before register allocation: moving loads early there only
 * adds spills. (Other compilers: no effect.)
 */
#if defined(__GNUC__) && !defined(__clang__)
#define MCUNET_NO_PRESCHEDULE __attribute__((optimize("no-schedule-insns")))
#else
#define MCUNET_NO_PRESCHEDULE
#endif

/* Four consecutive int8 values as one word (an unaligned LDR on Cortex-M). */
static inline int32_t mcunet_read_s8x4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* Two int16 values as one word, from a word-aligned address (two adjacent reads may become one
 * LDRD); may_alias: the halfwords were stored as int16. */
typedef int32_t mcunet_word_alias_ __attribute__((may_alias));
static inline int32_t mcunet_read_s16x2(const int16_t *p) { return *(const mcunet_word_alias_ *)(const void *)p; }

/* Clamp to the int8 range: one SSAT where the core has it (every ARMv7-M and later). */
static inline int32_t mcunet_ssat8(int32_t a) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  return __ssat(a, 8);
#else
  return a < -128 ? -128 : (a > 127 ? 127 : a);
#endif
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP

/* c + ((a * b + 2^31) >> 32): the rounded high word of a 32x32 product plus c (SMMLAR). */
static inline int32_t mcunet_smmlar(int32_t a, int32_t b, int32_t c) {
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}

static inline int32_t mcunet_smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
static inline int32_t mcunet_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t mcunet_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
static inline int32_t mcunet_smlabt(int32_t a, int32_t b, int32_t acc) { return __smlabt(a, b, acc); }
static inline int32_t mcunet_smlatb(int32_t a, int32_t b, int32_t acc) { return __smlatb(a, b, acc); }
static inline int32_t mcunet_sxtb16(int32_t a) { return (int32_t)__sxtb16(a); }
static inline int32_t mcunet_sadd16(int32_t a, int32_t b) { return (int32_t)__sadd16(a, b); }
static inline int32_t mcunet_sxtab16(int32_t a, int32_t b) { return (int32_t)__sxtab16(a, b); }
static inline int32_t mcunet_sxtb16_ror8(int32_t a) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(a));
  return r;
}
static inline int32_t mcunet_sxtab16_ror8(int32_t a, int32_t b) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

/*
 * Fused micro-steps of the staged SIMD kernels: a load at base + a constant byte offset, and the
 * instructions that use it, in one asm block, so the compiler can neither load early (and spill)
 * nor keep one address register per load. Macros, so the accumulators stay registers. The "m"
 * operand (a 4 KB block at base: the reach of the offset) tells the compiler what the load reads.
 *   mcunet_smlad2:     acc[0] += SMLAD(x, w0), acc[1] += SMLAD(x, w1), x = the staged word
 *   mcunet_smlad4d:    the same for two pixels, whose staged words are adjacent (one LDRD):
 *                      acc[0..1] from the word at base + off, acc[2..3] from the next
 *   mcunet_widen_pair: lanes = SXTB16(w), SXTB16(w ROR 8): a weight word's lanes for a channel pair
 */
typedef struct { int8_t bytes[4096]; } mcunet_block_;
#define mcunet_smlad2(acc, base, off, w0, w1)                                           \
  do {                                                                                  \
    int32_t mcunet_v_;                                                                  \
    __asm__("ldr %2, [%3, %4]\n\tsmlad %0, %2, %5, %0\n\tsmlad %1, %2, %6, %1"               \
            : "+r"((acc)[0]), "+r"((acc)[1]), "=&r"(mcunet_v_)                          \
            : "r"(base), "n"(off), "r"(w0), "r"(w1), "m"(*(const mcunet_block_ *)(base)));  \
  } while (0)
#define mcunet_smlad4d(acc, base, off, w0, w1)                                          \
  do {                                                                                  \
    int32_t mcunet_x0_, mcunet_x1_;                                                     \
    __asm__("ldrd %4, %5, [%6, %7]\n\tsmlad %0, %4, %8, %0\n\tsmlad %1, %4, %9, %1\n\t"      \
            "smlad %2, %5, %8, %2\n\tsmlad %3, %5, %9, %3"                                  \
            : "+r"((acc)[0]), "+r"((acc)[1]), "+r"((acc)[2]), "+r"((acc)[3]),           \
              "=&r"(mcunet_x0_), "=&r"(mcunet_x1_)                                      \
            : "r"(base), "n"(off), "r"(w0), "r"(w1), "m"(*(const mcunet_block_ *)(base))); \
  } while (0)
#define mcunet_widen_pair(lanes, base, off)                                             \
  __asm__("ldr %1, [%2, %3]\n\tsxtb16 %0, %1\n\tsxtb16 %1, %1, ror #8"                      \
          : "=&r"((lanes)[0]), "=&r"((lanes)[1])                                        \
          : "r"(base), "n"(off), "m"(*(const mcunet_block_ *)(const void *)(base)))

#else /* portable equivalents, bit for bit */

static inline int32_t mcunet_smmlar(int32_t a, int32_t b, int32_t c) {
  return (int32_t)((uint32_t)c + (uint32_t)(int32_t)(((int64_t)a * b + 0x80000000LL) >> 32));
}

static inline int32_t mcunet_lo16(int32_t a) { return (int16_t)(uint16_t)((uint32_t)a & 0xFFFFu); }
static inline int32_t mcunet_hi16(int32_t a) { return (int16_t)(uint16_t)((uint32_t)a >> 16); }
static inline int32_t mcunet_pack16(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t mcunet_byte(int32_t a, int k) { return (int8_t)(uint8_t)(((uint32_t)a >> (8 * k)) & 0xFFu); }

static inline int32_t mcunet_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(mcunet_lo16(a) * mcunet_lo16(b)) +
                   (uint32_t)(mcunet_hi16(a) * mcunet_hi16(b)));
}
static inline int32_t mcunet_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(mcunet_lo16(a) * mcunet_lo16(b)));
}
static inline int32_t mcunet_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(mcunet_hi16(a) * mcunet_hi16(b)));
}
static inline int32_t mcunet_smlabt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(mcunet_lo16(a) * mcunet_hi16(b)));
}
static inline int32_t mcunet_smlatb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(mcunet_hi16(a) * mcunet_lo16(b)));
}
static inline int32_t mcunet_sxtb16(int32_t a) { return mcunet_pack16(mcunet_byte(a, 0), mcunet_byte(a, 2)); }
static inline int32_t mcunet_sadd16(int32_t a, int32_t b) {
  return mcunet_pack16(mcunet_lo16(a) + mcunet_lo16(b), mcunet_hi16(a) + mcunet_hi16(b));
}
static inline int32_t mcunet_sxtb16_ror8(int32_t a) { return mcunet_pack16(mcunet_byte(a, 1), mcunet_byte(a, 3)); }
static inline int32_t mcunet_sxtab16(int32_t a, int32_t b) {
  return mcunet_pack16(mcunet_lo16(a) + mcunet_byte(b, 0), mcunet_hi16(a) + mcunet_byte(b, 2));
}
static inline int32_t mcunet_sxtab16_ror8(int32_t a, int32_t b) {
  return mcunet_pack16(mcunet_lo16(a) + mcunet_byte(b, 1), mcunet_hi16(a) + mcunet_byte(b, 3));
}
static inline void mcunet_widen_pair(int32_t *lanes, const void *base, int32_t off) {
  int32_t v = mcunet_read_s8x4((const int8_t *)base + off);
  lanes[0] = mcunet_sxtb16(v);
  lanes[1] = mcunet_sxtb16_ror8(v);
}
static inline void mcunet_smlad2(int32_t *acc, const int32_t *base, int32_t off, int32_t w0, int32_t w1) {
  int32_t x = *(const int32_t *)(const void *)((const int8_t *)base + off);
  acc[0] = mcunet_smlad(x, w0, acc[0]);
  acc[1] = mcunet_smlad(x, w1, acc[1]);
}
static inline void mcunet_smlad4d(int32_t *acc, const int32_t *base, int32_t off, int32_t w0, int32_t w1) {
  mcunet_smlad2(acc, base, off, w0, w1);
  mcunet_smlad2(acc + 2, base, off + 4, w0, w1);
}
#endif

/*
 * Helium (MVE, Cortex-M55): sixteen int8 products summed into an accumulator with one VMLADAVA;
 * the tail form takes the first n (< 16) bytes only (VCTP8 predication). Portable elsewhere.
 */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
static inline int32_t mcunet_mve_dot16(int32_t acc, const int8_t *x, const int8_t *w) {
  return vmladavaq_s8(acc, vldrbq_s8(x), vldrbq_s8(w));
}
static inline int32_t mcunet_mve_dot_tail(int32_t acc, const int8_t *x, const int8_t *w, int32_t n) {
  mve_pred16_t p = vctp8q((uint32_t)n);
  return vmladavaq_p_s8(acc, vldrbq_z_s8(x, p), vldrbq_z_s8(w, p), p);
}
#else
static inline int32_t mcunet_mve_dot_tail(int32_t acc, const int8_t *x, const int8_t *w, int32_t n) {
  uint32_t sum = (uint32_t)acc;
  for (int32_t i = 0; i < n; ++i) sum += (uint32_t)((int32_t)x[i] * (int32_t)w[i]);
  return (int32_t)sum;
}
static inline int32_t mcunet_mve_dot16(int32_t acc, const int8_t *x, const int8_t *w) {
  return mcunet_mve_dot_tail(acc, x, w, 16);
}
#endif

#endif
