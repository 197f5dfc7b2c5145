// Every header the CPU kernel bodies use, included before any target pragma
// so that their inline functions keep the baseline instruction set in every
// translation unit (one definition each).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>  // AVX2 intrinsics in engine/, for kernels_avx2.cpp
#endif

#include "../core/geometry.h"
#include "../core/problem.h"
#include "kernels.h"
