# SPDX-License-Identifier: MIT
## Node types: Nim object types registered in the segment's type table.
##
## ```nim
## type Person = object
##   name: string                   # BYTES
##   age: int                       # I64 (any signed integer)
##   visits: uint64                 # U64 (unsigned integers, bool)
##   score: float                   # F64
##   friend: NodeRef[Person]        # NODE: a node of the same graph
##   team: ShRoot[Team]            # ROOT: another root, by reference
##   tags: ShMap[string, int]       # NODE: a persistent map
##   history: ShVec[float]          # NODE: a persistent vector
## shmType Person
## ```
##
## `shmType` makes the type known to the binding: its name and fields
## (in declaration order, with their Nim names, so `shmctl dump` shows
## them) are registered in a segment's type table on first use, and it
## generates, for each field `f` of type `F`:
##
## - `f(Node[T])`: read in a section: numbers by value, strings as
##   `BytesView`, links as `Node[U]`, maps and vectors as views;
## - `f(MutNode[T])`: read in a transaction; a `NodeRef` field gives the
##   child as a `MutNode[U]` (copied into the transaction once: path
##   copying), maps and vectors give `MutMap`/`MutVec`;
## - `f=(MutNode[T], value)`: store a number or string; link a `MutNode`,
##   a `Node` view (of another graph: copied in) or `nil`; a `SharedRoot`
##   for a `ShRoot` field.
##
## The Nim object type is a schema: no value of it is ever built.

import std/macros
import core

macro shmType*(t: typedesc; name: static[string] = ""): untyped =
  ## Declares object type `t` a node type named `name` (default: the Nim
  ## type name, at most 31 bytes; field names at most 23 bytes).
  let sym = t.getTypeInst[1]
  let impl = sym.getImpl
  expectKind impl, nnkTypeDef
  var obj = impl[2]
  if obj.kind == nnkRefTy: error("shmType wants an object type, not a ref", t)
  expectKind obj, nnkObjectTy
  let tname = if name.len > 0: name else: $sym
  if tname.len > 31: error("shmgraph type name longer than 31 bytes: " & tname, t)
  result = newStmtList()
  let T = ident($sym)
  var fieldList = nnkBracket.newTree()
  var idx = 0
  for defs in obj[2]:
    if defs.kind != nnkIdentDefs:
      error("shmType: only plain fields are supported", defs)
    # re-parsed so that the generated code resolves it in the caller's scope
    let ftype = parseExpr(defs[^2].repr)
    for i in 0 ..< defs.len - 2:
      var fnode = defs[i]
      if fnode.kind == nnkPostfix: fnode = fnode[1]
      if fnode.kind == nnkPragmaExpr: fnode = fnode[0]
      let fname = $fnode
      if fname.len > 23:
        error("shmgraph field name longer than 23 bytes: " & fname, defs)
      fieldList.add quote do: (`fname`, shgKindOf(`ftype`))
      let getter = ident(fname)
      let setter = nnkAccQuoted.newTree(ident(fname & "="))
      let i = newLit(idx)
      result.add quote do:
        proc `getter`*(n: Node[`T`]): auto {.inline.} = readField(n, `i`, `ftype`)
        proc `getter`*(n: MutNode[`T`]): auto = mutField(n, `i`, `ftype`)
        proc `setter`*[X](n: MutNode[`T`]; v: X) = writeField(n, `i`, `ftype`, v)
      inc idx
  if idx > 64: error("shmgraph types have at most 64 fields", t)
  let nameLit = newLit(tname)
  let fieldSeq = prefix(fieldList, "@")
  result.insert 0, quote do:
    proc shgTypeName*(x: typedesc[`T`]): string = `nameLit`
    proc shgFields*(x: typedesc[`T`]): seq[(string, int32)] = `fieldSeq`
