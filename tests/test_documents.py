"""Real documents, made by other tools: files of Debian's packages that
tests/corpus.txt names (fetched by scripts/corpus.sh). PDFs read by the parser program
as the worker reads them, held against PyMuPDF — the engine pgai's worker reads PDFs
with; every other format read through the worker from file:// URIs, held against what
an independent reader finds in the same file (Python's csv, json, email, zipfile and
html.parser; the CSV a converter wrote from a workbook; the HTML a tool wrote beside
its RTF); and documents that fail the same way every time failed at their first
attempt."""

import csv
import email
import email.policy
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile

import pytest

from cluster import Cluster
from helpers import create_vectorizer, database_for, new_database, queue_empty, scalar, wait_for
from pdf_engines import WORD, ai_loader_text, holds, installed, overlap, pymupdf_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def documents():
    where = os.path.join(ROOT, "target", "corpus", "tests")
    subprocess.run([os.path.join(ROOT, "scripts", "corpus.sh"), os.path.join(ROOT, "tests", "corpus.txt"), where],
                   check=True)
    return open(os.path.join(where, "documents")).read().split()


@pytest.fixture(scope="module")
def corpus(documents):
    """The real PDFs."""
    paths = [p for p in documents if p.lower().endswith(".pdf")]
    assert len(paths) >= 10, paths
    return paths


def one(documents, suffix):
    """The corpus file whose path ends with `suffix`."""
    found = [p for p in documents if p.endswith(suffix)]
    assert len(found) == 1, (suffix, found)
    return found[0]


@pytest.fixture(scope="module")
def parser():
    return installed()


def test_real_pdfs_read_as_pymupdf_reads_them(corpus, parser):
    """Every PDF is read, and its words are PyMuPDF's (word-set overlap ≥ 0.9)."""
    compared = 0
    for path in corpus:
        text, error = ai_loader_text(path, *parser)
        assert error is None, (path, error)
        alike = overlap(pymupdf_text(path), text)
        if alike is None:  # a picture without text, for both engines
            continue
        compared += 1
        assert alike >= 0.9, (path, alike)
    assert compared >= 10


def headings(text):
    return [line.lstrip("#").strip() for line in text.split("\n") if re.match(r"#{1,6} ", line)]


def plain(s):
    return " ".join(WORD.findall(s.casefold()))


def test_manuals_keep_their_chapters_as_headings(corpus, parser):
    """In each manual with an outline, the outline's chapters (read by PyMuPDF) are
    Markdown headings of the text, and the body between them is not."""
    import pymupdf
    manuals = 0
    for path in corpus:
        with pymupdf.open(path) as doc:
            chapters = [title for level, title, _ in doc.get_toc() if level == 1 and plain(title)]
        if len(chapters) < 4:
            continue
        manuals += 1
        text, error = ai_loader_text(path, *parser)
        assert error is None, (path, error)
        found = " | ".join(plain(h) for h in headings(text))
        missing = [c for c in chapters if plain(c) not in found]
        assert len(missing) <= len(chapters) // 10, (path, missing)
        lines = [line for line in text.split("\n") if line.strip()]
        assert len(headings(text)) < len(lines) / 5, (path, len(headings(text)), len(lines))
    assert manuals >= 3


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        yield conn


def encrypted_pdf():
    import pymupdf
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Behind a password.")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")


def test_a_document_that_fails_the_same_way_is_not_retried(db, embedder, corpus):
    """With retries to spare, a real PDF is embedded whole, while an encrypted PDF, a
    damaged one and a picture each go to the failed queue at their first attempt, the
    error row saying why and that it is the document's own."""
    card = next(p for p in corpus if p.endswith("asyRefCard.pdf"))
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, body bytea NOT NULL)")
    vid = create_vectorizer(db, embedder, template="$chunk", loading="ai.loading_column('body', retries => 5)")
    rows = [(1, open(card, "rb").read()), (2, encrypted_pdf()), (3, b"%PDF-1.7\nnot really a PDF"),
            (4, b"\x89PNG\r\n\x1a\n" + bytes(64))]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s)", rows)
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 3,
             timeout=60, what="the batch settled")
    errors = db.execute("""SELECT (details -> 'key' ->> 'id')::int, message, (details ->> 'attempt')::int,
                                  (details ->> 'deterministic')::bool, (details ->> 'moved_to_failed_queue')::bool
                             FROM ai.vectorizer_errors ORDER BY 1""").fetchall()
    assert [(k, a, d, m) for k, _, a, d, m in errors] == [(2, 1, True, True), (3, 1, True, True), (4, 1, True, True)]
    messages = {k: message for k, message, *_ in errors}
    assert messages[2] == "parsing failed: PDF could not be read: it is encrypted with a password"
    assert messages[3] == "parsing failed: PDF could not be read: it is not a PDF, or it is damaged"
    assert messages[4] == "parsing failed: unsupported document type: PNG image"
    chunks = [c for (c,) in db.execute("SELECT chunk FROM doc_embedding_store WHERE id = 1 ORDER BY chunk_seq")]
    assert len(chunks) > 10
    assert overlap(pymupdf_text(card), "\n".join(chunks)) >= 0.9


class Markup(html.parser.HTMLParser):
    """The text of HTML or XML, as an independent reader finds it: every piece of
    character data outside scripts and styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style") and self.hidden > 0

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)

    @classmethod
    def text(cls, markup):
        reader = cls()
        reader.feed(markup)
        return " ".join(reader.parts)


def epub_text(path):
    """An EPUB's chapters in spine order, read with zipfile and ElementTree."""
    with zipfile.ZipFile(path) as book:
        container = ElementTree.fromstring(book.read("META-INF/container.xml"))
        root = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
        package = ElementTree.fromstring(book.read(root))
        items = {e.get("id"): e.get("href") for e in package.iter() if e.tag.endswith("}item")}
        base = os.path.dirname(root)
        return " ".join(Markup.text(book.read(os.path.normpath(os.path.join(base, items[e.get("idref")]))).decode())
                        for e in package.iter() if e.tag.endswith("itemref"))


def email_text(path):
    """A message's subject and text body, read with Python's email package."""
    message = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain", "html"))
    return message["subject"], body.get_content() if body else ""


@pytest.fixture(scope="module")
def file_cluster(embedder, documents):
    """A cluster reading file:// URIs under a directory holding a copy of each file."""
    root = tempfile.mkdtemp(prefix="ai_loader_documents.")
    os.chmod(root, 0o755)
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", f"ai_loader.file_root = '{root}'",
                       embedder.key_setting], env={"OPENAI_API_KEY": embedder.api_key})
    try:
        yield cluster, root
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_every_format_read_through_the_worker(file_cluster, embedder, documents):
    """One real file of each format, each loaded from a file:// URI, detected by its
    bytes (and, for CSV, JSON and e-mail, by its name), parsed in the parser program
    and stored whole (chunking_none); each text holds what an independent reader finds
    in the file; the types ai_loader does not read fail at once, naming the type."""
    cluster, root = file_cluster
    embedder.reset()
    files = {
        "workbook.xlsx": one(documents, "xlsx2csv/examples/test/utf8.xlsx"),
        "deaths.xlsx": one(documents, "readxl/extdata/deaths.xlsx"),
        "deaths.xls": one(documents, "readxl/extdata/deaths.xls"),
        "westnile.csv": one(documents, "asymptote/examples/westnile.csv"),
        "person.json": one(documents, "mimetype/testdata/json.json"),
        "message.eml": sorted(p for p in documents if "jwz/test/testdata/ham/" in p)[99],
        "memory.c.rtf": one(documents, "cxref/examples/memory.c.rtf"),
        "manual.odt": one(documents, "live-manual/odt/live-manual.en.odt"),
        "guide.epub": one(documents, "ubuntu-packaging-guide-epub/ubuntu-packaging-guide.epub"),
        "deck.pptx": one(documents, "mimetype/testdata/pptx.pptx"),
        "slides.odp": one(documents, "mimetype/testdata/odp.odp"),
        "sheet.ods": one(documents, "mimetype/testdata/ods.ods"),
        "letter.docx": one(documents, "mimetype/testdata/docx.docx"),
        "legacy.doc": one(documents, "mimetype/testdata/doc.doc"),
        "archive.zip": one(documents, "mimetype/testdata/zip.zip"),
        "archive.7z": one(documents, "mimetype/testdata/7z.7z"),
        "movie.mp4": one(documents, "mimetype/testdata/mp4.mp4"),
    }
    for name, path in files.items():
        shutil.copyfile(path, os.path.join(root, name))
    db = cluster.connect()
    db.execute("CREATE EXTENSION ai_loader")
    db.execute("CREATE TABLE doc (name text PRIMARY KEY, uri text NOT NULL)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk",
                            loading="ai.loading_uri('uri', retries => 3)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s)", [(n, f"file://{root}/{n}") for n in files])
    refused = {"legacy.doc", "archive.zip", "archive.7z", "movie.mp4"}
    wait_for(lambda: queue_empty(db, vid), timeout=120, what="every file read or refused")
    text = dict(db.execute("SELECT name, chunk FROM doc_embedding_store"))
    errors = {d["key"]["name"]: (m, d["attempt"], d["deterministic"])
              for m, d in db.execute("SELECT message, details FROM ai.vectorizer_errors")}
    assert set(text) == set(files) - refused, errors
    assert errors == {
        "legacy.doc": ("parsing failed: unsupported document type: legacy Office document (.doc/.ppt, or .xls not "
                       "named so)", 1, True),
        "archive.zip": ("parsing failed: unsupported document type: ZIP archive (not a Word, PowerPoint, Excel, "
                        "OpenDocument or EPUB package)", 1, True),
        "archive.7z": ("parsing failed: unsupported document type: 7-Zip archive", 1, True),
        "movie.mp4": ("parsing failed: unsupported document type: ISO media (MP4, QuickTime, HEIC or AVIF)", 1, True),
    }

    # Spreadsheets: each cell the converter wrote to CSV is in the table; the same
    # workbook saved as XLS and as XLSX reads the same.
    for row in csv.reader(open(one(documents, "xlsx2csv/examples/test/utf8.csv"), encoding="utf-8")):
        assert f"| {row[0]} | {row[1]} |" in text["workbook.xlsx"], row
    assert text["deaths.xls"] == text["deaths.xlsx"]
    assert text["deaths.xlsx"].startswith("## arts\n\n")
    # CSV: a Markdown table whose header is the file's first row, every cell in it.
    rows = list(csv.reader(open(files["westnile.csv"], encoding="utf-8")))
    assert text["westnile.csv"].startswith("| " + " | ".join(rows[0]) + " |\n| --- |")
    assert all(f"| {' | '.join(r)} |" in text["westnile.csv"] for r in rows[1:] if any(r))
    # JSON: every key and string value.
    def strings(v):
        if isinstance(v, dict):
            return [s for k, x in v.items() for s in [k, *strings(x)]]
        if isinstance(v, list):
            return [s for x in v for s in strings(x)]
        return [v] if isinstance(v, str) else []
    document = json.load(open(files["person.json"], encoding="utf-8"))
    assert all(json.dumps(s, ensure_ascii=False) in text["person.json"] for s in strings(document))
    # E-mail: the subject as the heading, the body's words.
    subject, body = email_text(files["message.eml"])
    assert text["message.eml"].startswith(f"# {subject}\n")
    assert holds(text["message.eml"], body) >= 0.95
    # RTF: the words of the HTML the same tool wrote of the same file.
    assert overlap(Markup.text(open(one(documents, "cxref/examples/memory.c.html"), encoding="latin-1").read()),
                   text["memory.c.rtf"]) >= 0.8
    assert "\n\n" in text["memory.c.rtf"]
    # OpenDocument text: the words of content.xml, and each of its headings a Markdown one.
    with zipfile.ZipFile(files["manual.odt"]) as odt:
        content = odt.read("content.xml").decode()
    assert overlap(Markup.text(content), text["manual.odt"]) >= 0.9
    odf_headings = [h for h in (Markup.text(m) for m in re.findall(r"<text:h[ >].*?</text:h>", content)) if h.strip()]
    ours = [line for line in text["manual.odt"].split("\n") if re.match(r"#{1,6} ", line)]
    assert len(ours) == len(odf_headings) > 10
    # EPUB: the chapters' words, in the book's order.
    assert overlap(epub_text(files["guide.epub"]), text["guide.epub"]) >= 0.9
    # Small files of each Office and OpenDocument kind.
    assert text["deck.pptx"] == "## Slide 1\n\nasdasd\n\nasdasdasddd"
    assert text["slides.odp"] == "## Hello World"
    assert text["sheet.ods"] == "## Sheet1\n\n| Hello | World |\n| --- | --- |"
    assert text["letter.docx"] == "asdasdasdasd"


# The separators of a Markdown splitter: a heading first, then blank lines, lines,
# spaces and characters.
MARKDOWN_SEPARATORS = r"array[E'\n#{1,6} ', E'\n\n', E'\n', ' ', '']"
HEADING = re.compile(r"#{1,6} ")


def tables(text):
    """The Markdown tables of a text, each a list of its lines: runs of lines that begin
    with `|`, the second a delimiter row (a tree drawn with `|--` is not a table)."""
    found, run = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("|"):
            run.append(line)
            continue
        if len(run) > 1 and re.fullmatch(r"\|( *:?-+:? *\|)+", run[1]):
            found.append(run)
        run = []
    return found


def test_markdown_chunks_keep_sections_and_table_rows(file_cluster, embedder, documents, corpus):
    """Real documents split with Markdown separators: a chunk that does not begin with a
    heading holds none (no chunk joins the end of one section to the start of the next),
    every table shorter than a chunk lies whole in one chunk, and each row of a longer
    table is a whole line of a chunk. The whole text, stored by a second vectorizer of the same rows, says
    where the headings and tables are."""
    cluster, root = file_cluster
    embedder.reset()
    size = 1500
    files = {
        "manual.odt": one(documents, "live-manual/odt/live-manual.en.odt"),
        "guide.epub": one(documents, "ubuntu-packaging-guide-epub/ubuntu-packaging-guide.epub"),
        "datasets.xlsx": one(documents, "readxl/extdata/datasets.xlsx"),
        "deaths.xlsx": one(documents, "readxl/extdata/deaths.xlsx"),
        "sheet.ods": one(documents, "mimetype/testdata/ods.ods"),
        "westnile.csv": one(documents, "asymptote/examples/westnile.csv"),
        "asy-latex.pdf": next(p for p in corpus if p.endswith("/asy-latex.pdf")),
        "liboctave.pdf": next(p for p in corpus if p.endswith("/liboctave.pdf")),
    }
    for name, path in files.items():
        shutil.copyfile(path, os.path.join(root, name))
    db = new_database(cluster, "sections")
    db.execute("CREATE TABLE doc (name text PRIMARY KEY, uri text NOT NULL)")
    whole = create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk",
                              loading="ai.loading_uri('uri')",
                              extra=", destination => ai.destination_table('whole')")
    split = create_vectorizer(db, embedder, template="$chunk", loading="ai.loading_uri('uri')",
                              chunking=f"ai.chunking_recursive_character_text_splitter({size}, 0, "
                                       f"{MARKDOWN_SEPARATORS}, is_separator_regex => true)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s)", [(n, f"file://{root}/{n}") for n in files])
    wait_for(lambda: queue_empty(db, whole) and queue_empty(db, split), timeout=120, what="every file embedded")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0
    texts = dict(db.execute("SELECT name, chunk FROM whole_store"))
    assert set(texts) == set(files)
    counted = {"headings": 0, "whole tables": 0, "long tables": 0}
    for name, text in texts.items():
        chunks = [c for (c,) in db.execute("SELECT chunk FROM doc_embedding_store WHERE name = %s ORDER BY chunk_seq",
                                           (name,))]
        for seq, chunk in enumerate(chunks):
            lines = chunk.split("\n")
            if seq > 0 and not HEADING.match(chunk):
                assert not any(HEADING.match(line) for line in lines), (name, chunk)
        counted["headings"] += sum(1 for line in text.split("\n") if HEADING.match(line))
        lines = {line for chunk in chunks for line in chunk.split("\n")}
        for table in tables(text):
            if len("\n".join(table)) <= size:
                assert any("\n".join(table) in chunk for chunk in chunks), (name, table)
                counted["whole tables"] += 1
            else:
                assert all(row in lines for row in table), (name, [row for row in table if row not in lines])
                counted["long tables"] += 1
    assert counted["headings"] > 100 and counted["whole tables"] >= 3 and counted["long tables"] >= 1, counted


def test_chunks_know_their_pages(file_cluster, embedder, documents, corpus):
    """A PDF's chunks record their page (the store's and view's chunk_page: the page
    most of a chunk is on): from 1 to at most the page count, in order, and the page
    whose text, as PyMuPDF reads it, holds the chunk's words best; a document without
    pages has none."""
    import pymupdf
    cluster, root = file_cluster
    embedder.reset()
    manual = next(p for p in corpus if p.endswith("/asy-latex.pdf"))
    shutil.copyfile(manual, os.path.join(root, "paged.pdf"))
    with open(os.path.join(root, "plain.txt"), "w") as f:
        f.write("A text without pages.\n\nIts one chunk has no page.")
    db = new_database(cluster, "pages")
    db.execute("CREATE TABLE doc (name text PRIMARY KEY, uri text NOT NULL)")
    vid = create_vectorizer(db, embedder, template="$chunk", loading="ai.loading_uri('uri')",
                            chunking="ai.chunking_recursive_character_text_splitter(800, 200)")
    db.execute("INSERT INTO doc VALUES ('paged.pdf', %s), ('plain.txt', %s)",
               (f"file://{root}/paged.pdf", f"file://{root}/plain.txt"))
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(DISTINCT name) FROM doc_embedding_store") == 2,
             timeout=60, what="both documents embedded")
    assert scalar(db, "SELECT array_agg(chunk_page) FROM doc_embedding WHERE name = 'plain.txt'") == [None]
    rows = db.execute("SELECT chunk_page, chunk FROM doc_embedding_store WHERE name = 'paged.pdf' "
                      "ORDER BY chunk_seq").fetchall()
    with pymupdf.open(manual) as pdf:
        page_texts = [page.get_text() for page in pdf]
    pages = [p for p, _ in rows]
    assert None not in pages and pages == sorted(pages), pages
    assert pages[0] == 1 and 1 < pages[-1] <= len(page_texts), (pages[-1], len(page_texts))
    # Each chunk is on the page that holds most of its words, as PyMuPDF reads the pages.
    def best(chunk):
        return max(holds(t, chunk) for t in page_texts)
    on_their_page = sum(1 for page, chunk in rows if holds(page_texts[page - 1], chunk) >= best(chunk) - 0.05)
    assert on_their_page >= 0.9 * len(rows), (on_their_page, len(rows))
