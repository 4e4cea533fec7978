#!/usr/bin/env bash
# Makes the kernel's address-space randomisation compatible with ASan/TSan.
# Kernels with vm.mmap_rnd_bits above 28 (32 on some GitHub runner images) break
# ThreadSanitizer ("unexpected memory mapping") and sometimes ASan. Lowers it to 28 when it is
# higher, and does nothing otherwise (as on our Debian 12 machines, where it is 28).
set -euo pipefail
bits=$(sysctl -n vm.mmap_rnd_bits 2>/dev/null || echo unknown)
if [[ $bits =~ ^[0-9]+$ ]] && (( bits > 28 )); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo sysctl -w vm.mmap_rnd_bits=28
  echo "sanitizer-sysctl: vm.mmap_rnd_bits $bits -> 28"
else
  echo "sanitizer-sysctl: vm.mmap_rnd_bits=$bits, nothing to do"
fi
