/* SPDX-License-Identifier: MIT */
/* placeholder: module under construction */
#include "graph_internal.h"
