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

#include "../geometry.h"
#include "../problem.h"
#include "kernels.h"
