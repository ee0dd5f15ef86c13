/* SPDX-License-Identifier: MIT */
#include "benchutil.h"
