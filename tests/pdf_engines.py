"""PDFs read by ai_loader's parser program and by the engines it is held against —
PyMuPDF (what pgai's worker reads PDFs with) and PDFium through pypdfium2 — and how
alike two texts of one document are."""

import os
import re
import subprocess
import unicodedata

WORD = re.compile(r"\w+")


def installed(pg_config="/usr/lib/postgresql/15/bin/pg_config"):
    """The parser program and PDFium's library as make install and make setup leave
    them beside the server's library."""
    lib = subprocess.run([pg_config, "--pkglibdir"], capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(lib, "ai_loader_parse"), os.path.join(lib, "ai_loader", "libpdfium.so")


def ai_loader_text(path, program, library, memory=512 << 20, cpu_seconds=60):
    """(text, None) or (None, why): the document read as the worker reads it, by the
    parser program in a process of its own, each page's end (a form feed) made a line
    break as the worker makes it."""
    with open(path, "rb") as document:
        answer = subprocess.run([program, "pdf", library, str(memory), str(cpu_seconds)],
                                stdin=document, capture_output=True).stdout
    head, _, body = answer.partition(b"\n")
    if head.startswith(b"T "):
        return body.decode().replace("\f", "\n").rstrip(), None
    return None, body.decode(errors="replace") or f"no answer ({answer[:80]!r})"


def pymupdf_text(path):
    import pymupdf
    pymupdf.TOOLS.mupdf_display_errors(False)
    with pymupdf.open(path) as doc:
        return "".join(page.get_text() for page in doc)


def pdfium_text(path):
    import pypdfium2
    doc = pypdfium2.PdfDocument(path)
    try:
        pages = []
        for page in doc:
            text = page.get_textpage()
            pages.append(text.get_text_range())
            text.close()
            page.close()
        return "\n".join(pages)
    finally:
        doc.close()


def words(text):
    """The distinct words of a text: NFKC (a ligature is its letters), case-folded."""
    return set(WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def overlap(a, b):
    """How alike two texts of one document are, whatever spaces each engine put
    between glyphs: the smaller of `holds(a, b)` and `holds(b, a)`. 1.0 when each holds
    all the other's words; a garbled or missing text shows on one side. None when
    neither has a word."""
    if not words(a) and not words(b):
        return None
    return min(holds(a, b), holds(b, a))


def holds(text, reference):
    """The share of the reference's distinct words that the text holds, found as words
    or within its letters with spaces and punctuation taken out (so a word split or
    joined otherwise still counts). 1.0 for a reference without words."""
    mine, theirs = words(reference), words(text)
    if not mine:
        return 1.0
    joined = None
    found = 0
    for w in mine:
        if w in theirs:
            found += 1
            continue
        if joined is None:
            joined = "".join(WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
        found += w in joined
    return found / len(mine)
