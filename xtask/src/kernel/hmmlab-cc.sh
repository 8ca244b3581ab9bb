#!/bin/sh
# hmmlab's kernel compiler: ccache, but never for a compile whose output
# depends on a file ccache does not hash (.incbin). See cc.rs beside this file.
cc=${HMMLAB_REAL_CC:-gcc}
prev=
for a do
  case $prev in
    -x) case $a in assembler*) exec "$cc" "$@" ;; esac ;;
  esac
  case $a in
    -xassembler*) exec "$cc" "$@" ;;
    -*) ;;
    *.S|*.s|*.sx) exec "$cc" "$@" ;;
    *.c) src=$a ;;
  esac
  prev=$a
done
if [ -n "$src" ] && [ -f "$src" ] && grep -q incbin "$src"; then
  exec "$cc" "$@"
fi
exec ccache "$cc" "$@"
