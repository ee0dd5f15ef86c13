# SPDX-License-Identifier: MIT
version       = "0.1.0"
author        = "shmgraph developers"
description   = "Persistent copy-on-write object graphs in shared memory (binding of libshmgraph)"
license       = "MIT"
srcDir        = "src"

requires "nim >= 1.6.0"

task test, "run the tests against the build tree":
  exec "../../scripts/test-nim.sh"
