# SPDX-License-Identifier: MIT
## Errors of the shmgraph binding.
##
## Every failing C call raises `ShmError` (or its subtype `ConflictError`
## for `SHG_ECONFLICT`), carrying the negative code the C library returned
## (`-errno` or an `SHG_E*` value) and `shg_strerror`'s text.

import capi

type
  ShmError* = object of CatchableError
    ## A shmgraph call failed. `code` is the negative C code.
    code*: int
  ConflictError* = object of ShmError
    ## A commit lost the compare-and-swap to another writer (`SHG_ECONFLICT`).
    ## The transaction is still open: retry, abort or detach it.
  ViewEscapeDefect* = object of Defect
    ## A view made inside a `read` section was used after the section ended.

proc strerror*(code: int): string =
  ## The C library's description of `code` (never empty).
  $shg_strerror(cint(code))

proc newShmError*(code: int; what: string): ref ShmError =
  ## An exception for `code`, its message "what: description (code)".
  let msg = what & ": " & strerror(code) & " (" & $code & ")"
  if code == SHG_ECONFLICT:
    result = (ref ConflictError)(msg: msg, code: code)
  else:
    result = (ref ShmError)(msg: msg, code: code)

template chk*(rc: SomeInteger; what: string) =
  ## Raises `ShmError` when `rc` is negative.
  let r = int(rc)
  if r < 0:
    raise newShmError(r, what)
