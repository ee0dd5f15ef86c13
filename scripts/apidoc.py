#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""apidoc.py - generate docs/API.md from the comments of the public headers.

Usage:
    scripts/apidoc.py [-o FILE] [--lint] [HEADER...]

Reads the public headers include/shmgraph/*.h (or the HEADERs given) and writes a
Markdown API reference to FILE (default: standard output). Regenerate the
committed reference with:

    scripts/apidoc.py -o docs/API.md

What it understands (the headers' conventions):
  * section separators: a comment whose text starts with a line of dashes
    ("/* ----...\\n * Title.\\n */") or "/* ---- title ---- */";
  * kernel-doc comments ("/** name() - summary. @arg: text ...") and plain
    comments directly above a declaration; one comment followed, without a
    blank line, by several declarations documents all of them, and a
    comment between them adds a note to the declaration after it;
  * "Context:", "Ordering:" and "Return:" parts of a comment, shown as
    labelled lines;
  * prototypes (SHG_API ...;), static inline functions (body omitted),
    struct/enum definitions, typedefs and #define constants.

--lint lists on standard error the public functions without a comment and
the commands (functions returning int) whose comment has no "Return:".
Python 3 standard library only.
"""

import argparse
import os
import re
import sys

HEADERS = ["include/shmgraph/base.h", "include/shmgraph/segment.h",
           "include/shmgraph/inline.h", "include/shmgraph/roots.h",
           "include/shmgraph/inspect.h", "include/shmgraph/graph.h",
           "include/shmgraph/snapshot.h", "include/shmgraph/repl.h"]
LABELS = ("Context", "Ordering", "Return")
SKIP_PP = re.compile(r"#\s*(if|ifdef|ifndef|endif|else|elif|include|error)\b")
GUARD = re.compile(r"#\s*define\s+(SHMGRAPH_\w*H|SHG_API|SHG_MUST_CHECK)\b")


class Item:
    """A comment, a preprocessor line or a code declaration."""

    def __init__(self, kind, text, start, end):
        self.kind = kind  # "comment", "pp", "code"
        self.text = text
        self.start = start  # first line (1-based)
        self.end = end  # last line
        self.trailing = None  # comment on the code's last line


def tokenize(src):
    """Split a header into items, with line numbers."""
    items = []
    i, n, line = 0, len(src), 1
    code, code_start, depth = [], None, 0

    def flush(end_line):
        nonlocal code, code_start
        text = "".join(code).strip()
        if text:
            items.append(Item("code", text, code_start, end_line))
        code, code_start = [], None

    while i < n:
        c = src[i]
        if src.startswith("/*", i) and depth == 0 and not "".join(code).strip():
            j = src.index("*/", i) + 2
            text = src[i:j]
            end = line + text.count("\n")
            it = Item("comment", text, line, end)
            if items and items[-1].kind in ("code", "pp") and \
                    items[-1].end == line and "\n" not in text:
                items[-1].trailing = it
            else:
                items.append(it)
            line, i = end, j
            continue
        if c == "#" and depth == 0 and not "".join(code).strip():
            j = i
            while True:
                k = src.find("\n", j)
                k = n if k < 0 else k
                if src[k - 1:k] == "\\":
                    j = k + 1
                    continue
                break
            text = src[i:k]
            end = line + text.count("\n")
            items.append(Item("pp", text, line, end))
            line, i = end, k
            continue
        if c == "\n":
            line += 1
            if code:
                code.append(c)
            i += 1
            continue
        if src.startswith("/*", i):  # comment inside code: keep it
            j = src.index("*/", i) + 2
            code.append(src[i:j])
            line += src[i:j].count("\n")
            i = j
            continue
        if not code and c.isspace():
            i += 1
            continue
        m = re.match(r'extern\s+"C"\s*\{', src[i:]) if not code else None
        if m:  # C++ linkage block: not a scope of its own here
            i += m.end()
            continue
        if not code and c == "}" and depth == 0:  # its closing brace
            i += 1
            continue
        if code_start is None:
            code_start = line
        code.append(c)
        i += 1
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                # "};" ends a struct/enum; a function body ends at "}".
                m = re.match(r"[ \t]*(\w+[ \t]*)?;", src[i:])
                if m:
                    code.append(src[i:i + m.end()])
                    i += m.end()
                flush(line)
        elif c == ";" and depth == 0:
            flush(line)
    flush(line)
    return items


def comment_lines(text):
    """Text lines of a C comment, without the decoration."""
    body = text[2:-2]
    if body.startswith("*"):
        body = body[1:]
    out = []
    for ln in body.split("\n"):
        s = ln.strip()
        if s.startswith("*"):
            s = s[1:]
            if s.startswith(" "):
                s = s[1:]
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def section_title(text):
    """Title and intro of a section separator comment, else None."""
    lines = comment_lines(text)
    if not lines:
        return None
    m = re.match(r"^-{4,}\s*(.*?)\s*-*$", lines[0])
    if not m:
        return None
    if m.group(1):
        return m.group(1), []
    rest = lines[1:]
    if not rest:
        return None
    first, k = [], 0
    while k < len(rest) and rest[k].strip():
        first.append(rest[k].strip())
        k += 1
    text = " ".join(first)
    cut = re.search(r"(\.\s|:\s| -- |\.$)", text)
    title = text[:cut.start()] if cut else text
    intro = text[cut.end():].strip() if cut else ""
    return title, ([intro] if intro else []) + rest[k:]


class Doc:
    """A parsed comment: summary, parameters, paragraphs, labelled parts."""

    def __init__(self, text):
        lines = comment_lines(text)
        self.name = None
        self.summary = ""
        self.params = []
        self.paras = []
        self.labels = []
        if lines:
            m = re.match(r"^((?:struct |enum )?[\w]+(?:\(\))?)\s+-\s+(.*)$",
                         lines[0])
            if m:
                self.name, self.summary = m.group(1), m.group(2)
                lines = lines[1:]
                # The brief runs on to the first blank line or @param.
                while lines and lines[0].strip() and \
                        not re.match(r"@\w+:", lines[0]):
                    self.summary += " " + lines[0].strip()
                    lines = lines[1:]
        para, cur = [], None
        for ln in lines:
            pm = re.match(r"^@(\w+):\s*(.*)$", ln)
            if pm and not para:
                cur = [pm.group(1), pm.group(2)]
                self.params.append(cur)
                continue
            if cur is not None and ln.startswith(" ") and ln.strip():
                cur[1] += " " + ln.strip()
                continue
            cur = None
            if not ln.strip():
                if para:
                    self.paras.append(para)
                    para = []
                continue
            para.append(ln)
        if para:
            self.paras.append(para)
        self._split_labels()

    def _split_labels(self):
        """Move "Context:/Ordering:/Return:" parts out of the prose."""
        pat = re.compile(r"\b(%s):\s*" % "|".join(LABELS))
        parts = pat.split(self.summary)
        self.summary = parts[0].strip()
        for k in range(1, len(parts) - 1, 2):
            self.labels.append((parts[k], parts[k + 1].strip()))
        paras = []
        for p in self.paras:
            if is_list(p):
                paras.append(p)
                continue
            parts = pat.split(" ".join(l.strip() for l in p))
            head = parts[0].strip()
            if head:
                paras.append([head])
            for k in range(1, len(parts) - 1, 2):
                self.labels.append((parts[k], parts[k + 1].strip()))
        self.paras = paras

    def has(self, label):
        return any(l == label for l, _ in self.labels)


class Entry:
    """One documented group: declarations and the comments about them."""

    def __init__(self, doc):
        self.doc = doc  # Doc or None
        self.decls = []  # (code item, note Doc or None)


def decl_kind(code):
    head = code.split("{")[0]
    if code.startswith("#"):
        return "macro"
    if re.match(r"typedef\b", code):
        return "typedef"
    if "(" in head and not re.match(r"(struct|enum|union)\s+\w+\s*\{", code):
        return "inline" if "{" in code else "function"
    if re.match(r"(struct|enum|union)\b", code):
        return "type" if "{" in code else "forward"
    return "other"


def decl_name(code):
    kind = decl_kind(code)
    if kind == "macro":
        m = re.match(r"#\s*define\s+(\w+)", code)
        return m.group(1) if m else code
    if kind in ("function", "inline"):
        head = code.split("{")[0]
        m = re.search(r"(\w+)\s*\(", head)
        return m.group(1) + "()" if m else head
    if kind == "typedef":
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", code) or \
            re.search(r"(\w+)\s*;\s*$", code)
        return m.group(1) if m else code
    m = re.match(r"((?:struct|enum|union)\s+\w+)", code)
    return m.group(1) if m else code.split()[0]


def signature(code):
    """A prototype on one line, without export/annotation macros."""
    kind = decl_kind(code)
    head = code.split("{")[0] if kind == "inline" else code
    head = re.sub(r"/\*.*?\*/", " ", head, flags=re.S)
    head = re.sub(r"\b(SHG_API|SHG_MUST_CHECK)\b", " ", head)
    head = re.sub(r"\s+", " ", head).strip()
    head = head.replace("( ", "(").replace(" )", ")").rstrip(";").strip()
    return head + ";"


def must_check(code):
    return "SHG_MUST_CHECK" in code.split("{")[0]


def group(items):
    """Turn items into sections of entries."""
    sections = []  # [title, intro lines, entries, file overview]
    cur = None
    i = 0

    def new_section(title, intro):
        nonlocal cur
        cur = [title, intro, []]
        sections.append(cur)

    def skip(it):
        return it.kind == "pp" and (SKIP_PP.match(it.text) or
                                    GUARD.match(it.text))

    def standalone(k):
        """Comment k documents no declaration right below it."""
        nxt = items[k + 1] if k + 1 < len(items) else None
        return (not nxt or nxt.kind == "comment" or skip(nxt) or
                nxt.start > items[k].end + 1)

    while i < len(items):
        it = items[i]
        if skip(it):
            i += 1
            continue
        if it.kind == "comment":
            sec = section_title(it.text)
            if sec:
                new_section(sec[0], sec[1])
                i += 1
                continue
        if cur is None:
            new_section("Overview", [])
        if it.kind == "comment":
            # A file's opening comment (SPDX line, then purpose).
            lines = comment_lines(it.text)
            if lines and lines[0].startswith("SPDX-License-Identifier"):
                i += 1
                continue
            if standalone(i):
                if cur[0] == "Overview" or not cur[2]:
                    cur[1] = cur[1] + [""] + comment_lines(it.text)
                i += 1
                continue
            entry = Entry(Doc(it.text))
            i += 1
        else:
            entry = Entry(None)
        note = None
        last_end = None
        while i < len(items):
            it = items[i]
            if last_end is not None and it.start > last_end + 1:
                break
            if it.kind == "comment":
                if section_title(it.text):
                    break
                if standalone(i):
                    break
                note = Doc(it.text)
                last_end = it.end
                i += 1
                continue
            if skip(it):
                break
            entry.decls.append((it, note))
            note = None  # an inner comment is about the next line only
            last_end = it.end
            i += 1
        if entry.decls:
            cur[2].append(entry)
    return [s for s in sections if s[2] or s[1]]


# ---- Markdown ---------------------------------------------------------------

def anchor(title):
    a = title.lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


CODEY = re.compile(
    r"(\*?@\w+|\bshg_\w+\*?(?:\(\))?|\b[A-Z][A-Z0-9]*_[A-Z0-9_]*\*?|"
    r"\bstruct shg_\w+|-E[A-Z]+\b|\bE[A-Z]{4,}\b|\b\w+\(\))")


def md_text(s):
    """Prose from a comment as Markdown: identifiers in code spans."""
    out, pos = [], 0
    s = re.sub(r"(?<![\w*])\*([a-z]\w*)\*(?![\w*])", "\x01\\1\x01", s)
    for m in CODEY.finditer(s):
        out.append(md_escape(s[pos:m.start()]))
        tok = m.group(0).replace("@", "")
        out.append("`%s`" % tok)
        pos = m.end()
    out.append(md_escape(s[pos:]))
    return "".join(out).replace("\x01", "*")  # kept *emphasis*


def md_escape(s):
    return re.sub(r"([*_\\`<\[\]])", r"\\\1", s)


def is_list(lines):
    return bool(lines) and lines[0].strip().startswith("- ")


def render_para(lines, out):
    """One paragraph (comment lines) as Markdown; "- " lines as a list."""
    if not is_list(lines):
        out.append(md_text(" ".join(l.strip() for l in lines)))
        out.append("")
        return
    items = []
    for l in lines:
        if l.strip().startswith("- "):
            items.append(l.strip()[2:])
        else:
            items[-1] += " " + l.strip()
    for it in items:
        out.append("- " + md_text(it))
    out.append("")


def render_lines(lines, out):
    """Comment lines (paragraphs separated by blank lines) as Markdown."""
    para = []
    for ln in list(lines) + [""]:
        if ln.strip():
            para.append(ln)
        elif para:
            # "Conventions:" followed by a list: split the lead-in off.
            if not is_list(para) and len(para) > 1 and is_list(para[1:]):
                render_para(para[:1], out)
                para = para[1:]
            render_para(para, out)
            para = []


def render_doc_body(doc, out):
    if doc.summary:
        summary = doc.summary
        if re.match(r"[a-z]+\b(?![_(])", summary):
            summary = summary[0].upper() + summary[1:]
        out.append(md_text(summary))
        out.append("")
    if doc.params:
        for name, text in doc.params:
            out.append("- `%s`: %s" % (name, md_text(text)))
        out.append("")
    for p in doc.paras:
        render_para(p, out)
    for label, text in doc.labels:
        out.append("**%s:** %s  " % (label, md_text(text)))
    if doc.labels:
        out[-1] = out[-1].rstrip()
        out.append("")


def render_entry(entry, out, toc):
    names = [decl_name(c.text) for c, _ in entry.decls]
    title = ", ".join(names)
    out.append("#### %s" % title)
    out.append("")
    toc.append(names)
    out.append("```c")
    for code, _ in entry.decls:
        kind = decl_kind(code.text)
        if kind in ("function", "inline"):
            sig = signature(code.text)
            out.append(sig)
        else:
            text = code.text
            if code.trailing:
                text += " " + code.trailing.text
            out.append(text)
    out.append("```")
    out.append("")
    checked = [decl_name(c.text) for c, _ in entry.decls
               if must_check(c.text)]
    if checked:
        out.append("The result must be used (`warn_unused_result`).")
        out.append("")
    if entry.doc:
        render_doc_body(entry.doc, out)
    notes = [(decl_name(c.text), n) for c, n in entry.decls if n]
    seen = set()
    for name, note in notes:
        if id(note) in seen:
            continue
        seen.add(id(note))
        who = [decl_name(c.text) for c, n in entry.decls if n is note]
        body = []
        render_doc_body(note, body)
        text = " ".join(l for l in body if l)
        out.append("- %s: %s" % (", ".join("`%s`" % w for w in who), text))
    if notes:
        out.append("")
    if not entry.doc and not notes:
        trailing = [c.trailing for c, _ in entry.decls if c.trailing]
        if not trailing:
            out.append("*No description in the header.*")
            out.append("")


def render(headers, root):
    out = ["<!-- Generated by scripts/apidoc.py from "
           + " and ".join(headers)
           + "; do not edit. Regenerate: scripts/apidoc.py -o docs/API.md -->",
           "",
           "# shmgraph API reference",
           "",
           "Generated from the comments of the public headers "
           + ", ".join("`%s`" % h for h in headers)
           + ". Include `<shmgraph.h>` (it includes every `shmgraph/*.h`) and link with "
           "`-lshmgraph` (`pkg-config --cflags --libs shmgraph`).",
           "",
           "Conventions: commands return 0 (or a count where stated) or a "
           "negative code, `-errno` or an `SHG_E*` code below -4095 "
           "(`shg_strerror()` names any of them); predicates return `bool`. "
           "**Context** says whether the caller must or must not be inside "
           "a read section, **Ordering** which memory ordering a call "
           "provides, **Return** what it returns.",
           ""]
    body, toc_lines = [], []
    for h in headers:
        with open(os.path.join(root, h), encoding="utf-8") as f:
            src = f.read()
        sections = group(tokenize(src))
        body.append("## `%s`" % os.path.basename(h))
        body.append("")
        toc_lines.append("- [`%s`](#%s)" % (os.path.basename(h),
                                            anchor(os.path.basename(h))))
        for title, intro, entries in sections:
            body.append("### %s" % title)
            body.append("")
            if title != "Overview":
                toc_lines.append("  - [%s](#%s)" % (title, anchor(title)))
            render_lines(intro, body)
            toc = []
            for e in entries:
                render_entry(e, body, toc)
    out.append("Contents:")
    out.append("")
    out.extend(toc_lines)
    out.append("")
    out.extend(body)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def lint(headers, root):
    problems = []
    for h in headers:
        with open(os.path.join(root, h), encoding="utf-8") as f:
            sections = group(tokenize(f.read()))
        for _, _, entries in sections:
            for e in entries:
                for code, note in e.decls:
                    kind = decl_kind(code.text)
                    if kind != "function":
                        continue
                    name = decl_name(code.text)
                    docs = [d for d in (e.doc, note) if d]
                    if not docs:
                        problems.append("%s: %s: no comment" % (h, name))
                        continue
                    ret = re.match(r"(SHG_API\s+)?(SHG_MUST_CHECK\s+)?int\s",
                                   code.text)
                    if ret and not any(d.has("Return") for d in docs):
                        problems.append("%s: %s: command without 'Return:'"
                                        % (h, name))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", help="write here (default: stdout)")
    ap.add_argument("--lint", action="store_true",
                    help="list undocumented functions on stderr")
    ap.add_argument("headers", nargs="*", default=HEADERS)
    args = ap.parse_args()
    root = os.path.normpath(os.path.join(os.path.dirname(
        os.path.abspath(__file__)), ".."))
    text = render(args.headers, root)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.lint:
        for p in lint(args.headers, root):
            print("apidoc: " + p, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
