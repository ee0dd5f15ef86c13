/* SPDX-License-Identifier: MIT */
#ifndef SHG_BENCHUTIL_H
#define SHG_BENCHUTIL_H
#endif
