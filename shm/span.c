/* SPDX-License-Identifier: MIT */
/* placeholder: module under construction */
#include "internal.h"
