#!/bin/bash
# Print .text / .rodata / .data per build and deltas vs the no-TFLM baseline.
cd "${BUILD:-$(cd "$(dirname "$0")" && pwd)/build}"
printf "%-10s %-9s %8s %8s %6s %12s %14s\n" build variant .text .rodata .data text-base flash-base
for d in cmsis_O2 ref_O2 cmsis_Os ref_Os; do
  [ -f $d/baseline.size ] || continue
  bt=$(awk '$1==".text"{print $2}' $d/baseline.size)
  bf=$(awk '$1==".text"||$1==".rodata"||$1==".data"||$1==".ARM.exidx"||$1==".init_array"||$1==".fini_array"{s+=$2}END{print s}' $d/baseline.size)
  for v in baseline empty full int8only; do
    t=$(awk '$1==".text"{print $2}' $d/$v.size); r=$(awk '$1==".rodata"{print $2}' $d/$v.size); da=$(awk '$1==".data"{print $2}' $d/$v.size)
    f=$(awk '$1==".text"||$1==".rodata"||$1==".data"||$1==".ARM.exidx"||$1==".init_array"||$1==".fini_array"{s+=$2}END{print s}' $d/$v.size)
    printf "%-10s %-9s %8d %8d %6d %12d %14d\n" $d $v $t $r $da $((t-bt)) $((f-bf))
  done
done
