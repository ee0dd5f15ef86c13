# SPDX-License-Identifier: MIT
# Defaults for everything compiled in this package: ORC (destructors),
# threads on.
switch("mm", "orc")
switch("threads", "on")
switch("path", thisDir() & "/src")
