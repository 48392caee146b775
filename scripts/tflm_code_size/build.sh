#!/bin/bash
# TF Lite Micro's code size for the operators mcunet-tvm compiles, on the Cortex-M7 (soft float):
# the comparison point of docs/BENCHMARKS.md ("Code size vs TF Lite Micro").
#
#   SRC=/path/to/sources scripts/tflm_code_size/build.sh <cmsis|ref> <O2|Os>
#   scripts/tflm_code_size/summary.sh      # the table, .text minus a no-TFLM baseline
#
# Needs network-fetched sources (not part of this repository, never used by tests), laid out
# as $SRC/{tflm,cmsis_nn,flatbuffers,gemmlowp,ruy,cmsis}; recorded with tflite-micro
# 90b983c2b3f1480642e040bbd2ddb37b998f3424 and the versions its download scripts pin
# (CMSIS-NN 4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae, flatbuffers v25.9.23 with TFLM's patch,
# gemmlowp 719139c, ruy d371283, CMSIS_6 5782d6f and Cortex_DFP c2c70a9, headers only).
# The source lists here were printed by TFLM's own Makefile (`list_library_sources`,
# `list_third_party_sources`, TARGET=cortex_m_generic TARGET_ARCH=cortex-m7
# [OPTIMIZED_KERNEL_DIR=cmsis_nn]). app/main.cc registers CONV_2D, DEPTHWISE_CONV_2D, ADD,
# FULLY_CONNECTED, MEAN, AVERAGE_POOL_2D, RESHAPE, SOFTMAX, PAD, QUANTIZE, DEQUANTIZE,
# allocates and invokes, so the linker (--gc-sections) keeps what an application needs.
set -euo pipefail
KIND=${1:-cmsis}; OPT=${2:-O2}
TOP=$(cd "$(dirname "$0")" && pwd)
SRC=${SRC:?set SRC to the folder holding tflm, cmsis_nn, flatbuffers, gemmlowp, ruy, cmsis}
OUT=${BUILD:-$TOP/build}/${KIND}_${OPT}${TAG:+_$TAG}
mkdir -p $OUT/obj

ARCH="-mcpu=cortex-m7 -mthumb -mfloat-abi=soft"
DEFS="-DTF_LITE_STATIC_MEMORY -DTF_LITE_DISABLE_X86_NEON -DNDEBUG -DTF_LITE_MCU_DEBUG_LOG \
 -DKERNELS_OPTIMIZED_FOR_SPEED -DCPU_M7=1 -DARMCM7 -DCMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE=\"ARMCM7.h\" \
 ${EXTRA_DEFS:-}"
if [ "$KIND" = cmsis ]; then
  DEFS="$DEFS -DCMSIS_NN -DARM_NN_ENABLE_F16=0 -DARM_NN_ENABLE_F32=0"
  LIST="$TOP/srcs_cmsis.txt $TOP/srcs_tp_cmsis.txt"
else
  LIST="$TOP/srcs_ref.txt"
fi
COMMON="$ARCH -$OPT -ffunction-sections -fdata-sections -fno-unwind-tables \
 -fno-asynchronous-unwind-tables -fomit-frame-pointer -funsigned-char $DEFS"
CXXFLAGS="$COMMON -std=c++17 -fno-exceptions -fno-rtti -fno-threadsafe-statics"
CFLAGS="$COMMON -std=c17"
INC="-I$SRC/tflm -I$SRC/tflm/tensorflow/lite/micro/tools/make/downloads \
 -I$SRC/gemmlowp -I$SRC/flatbuffers/include -I$SRC/ruy \
 -I$SRC/cmsis_nn -I$SRC/cmsis_nn/Include -I$SRC/cmsis -I$SRC/cmsis/CMSIS/Core/Include \
 -I$SRC/cmsis/Cortex_DFP/Device/ARMCM7/Include"
echo "CXXFLAGS: $CXXFLAGS" > $OUT/flags.txt
echo "CFLAGS:   $CFLAGS" >> $OUT/flags.txt
echo "INC:      $INC" >> $OUT/flags.txt

# signal/* (audio front-end library, needs kissfft) is never referenced by the
# app and is excluded from the archive.
cat $LIST | grep -v '^signal/' > $OUT/sources.txt

compile() {
  s=$1
  o=$OUT/obj/$(echo "$s" | sed 's|/|__|g').o
  [ -f "$o" ] && { echo "$o"; return; }
  case "$s" in
    *.c)  arm-none-eabi-gcc $CFLAGS $INC -c $SRC/tflm/$s -o $o 2>>$OUT/errors.log || { echo "FAIL $s" >>$OUT/errors.log; return; } ;;
    *.cc) arm-none-eabi-g++ $CXXFLAGS $INC -c $SRC/tflm/$s -o $o 2>>$OUT/errors.log || { echo "FAIL $s" >>$OUT/errors.log; return; } ;;
  esac
  echo "$o"
}
export -f compile; export OUT SRC CFLAGS CXXFLAGS INC
: > $OUT/errors.log
xargs -P ${JOBS:-2} -I{} bash -c 'compile {}' < $OUT/sources.txt > $OUT/objs.txt
grep FAIL $OUT/errors.log || true
rm -f $OUT/libtflm.a
arm-none-eabi-ar rcs $OUT/libtflm.a $(cat $OUT/objs.txt)

LDFLAGS="$ARCH --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections"
for V in full int8only empty baseline; do
  case $V in
    full) D="";; int8only) D="-DOPS_INT8_ONLY";; empty) D="-DEMPTY_RESOLVER";; baseline) D="-DBASELINE";;
  esac
  arm-none-eabi-g++ $CXXFLAGS $INC $D -c $TOP/app/main.cc -o $OUT/main_$V.o
  arm-none-eabi-g++ $CXXFLAGS -c $TOP/app/model.cc -o $OUT/model.o
  arm-none-eabi-g++ $LDFLAGS -Wl,-Map=$OUT/$V.map $OUT/main_$V.o $OUT/model.o \
     $OUT/libtflm.a -o $OUT/$V.elf
  arm-none-eabi-size -A $OUT/$V.elf > $OUT/$V.size
  arm-none-eabi-nm --size-sort -S -C -r $OUT/$V.elf > $OUT/$V.nm
done
echo "built $OUT"
