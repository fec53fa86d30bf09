"""Real PDFs (`--pdf-only`): ai_loader's PDF engine beside PyMuPDF (the engine pgai's
worker reads PDFs with) and PDFium through pypdfium2, on the same files, one thread each.

The corpus is bench/pdf_corpus.txt: Debian documentation packages, fetched and unpacked
by scripts/corpus.sh into target/corpus/pdf (about 770 PDFs; `--pdf-docs N`
takes every k-th file to keep N). ai_loader reads each file as its worker does: one
parser program per document (started, limited, its answer read). The others read each
file in one Python process. CPU-seconds are the engine's process's (and, for ai_loader,
its parser programs'). Text unlike PyMuPDF's: word-set overlap (tests/pdf_engines.py)
below 0.9, and below 0.5, on the documents where either engine found a word.
"""

import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(ROOT, "target", "corpus", "pdf")

ENGINES = ("pymupdf", "pdfium", "ai_loader")
GOAL_OVERLAP = 0.9
GOAL_CPU_RATIO = 1.2


def corpus(docs):
    subprocess.run([os.path.join(ROOT, "scripts", "corpus.sh"), os.path.join(HERE, "pdf_corpus.txt"), CORPUS],
                   check=True)
    paths = [p for p in open(os.path.join(CORPUS, "documents")).read().split() if p.lower().endswith(".pdf")]
    if docs and docs < len(paths):
        step = len(paths) / docs
        paths = [paths[int(i * step)] for i in range(docs)]
    return paths


def read_all(engine, paths, out_dir):
    """Runs this module as a program reading `paths` with `engine` (texts into
    out_dir); its CPU-seconds (with its children's), wall seconds and per-file
    results."""
    os.makedirs(out_dir, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, __file__, engine, out_dir], input="\n".join(paths), text=True,
                          capture_output=True, check=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, wall, json.loads(done.stdout)


def run_pdfs(args, say):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from pdf_engines import overlap
    paths = corpus(args.pdf_docs)
    packages = open(os.path.join(CORPUS, "packages")).read().split()
    say(f"-- {len(paths)} PDFs from {', '.join(packages)}")
    out = os.path.join(ROOT, "target", "corpus", "texts")
    runs = {}
    for engine in ENGINES:
        cpu, wall, results = read_all(engine, paths, os.path.join(out, engine))
        runs[engine] = (cpu, wall, results)
        say(f"-- {engine}: {cpu:.1f} CPU-s, {wall:.1f} s, {sum(1 for r in results if r['error'])} failed")
    reference = runs["pymupdf"][2]
    rows = []
    for engine in ENGINES:
        cpu, wall, results = runs[engine]
        failed, unlike, garbled, lowest, readable = [], [], [], None, 0
        for path, ref, mine in zip(paths, reference, results):
            if mine["error"]:
                failed.append((path, mine["error"]))
                continue
            if engine == "pymupdf" or ref["error"]:
                continue
            o = overlap(open(ref["text"]).read(), open(mine["text"]).read())
            if o is None:
                continue
            readable += 1
            lowest = o if lowest is None else min(lowest, o)
            if o < GOAL_OVERLAP:
                unlike.append((round(o, 3), os.path.relpath(path, CORPUS)))
            if o < 0.5:
                garbled.append(path)
        rows.append({"run": "pdf-engine", "engine": engine, "docs": len(paths), "cpu_s": round(cpu, 2),
                     "wall_s": round(wall, 2), "failed": len(failed), "failed_read_by_pymupdf":
                     sum(1 for p, r in zip(paths, reference) if not r["error"] and p in dict(failed)),
                     "compared": readable, "overlap_below_0_9": len(unlike), "overlap_below_0_5": len(garbled),
                     "lowest_overlap": None if lowest is None else round(lowest, 3),
                     "cpu_of_pymupdf": round(cpu / runs["pymupdf"][0], 2),
                     "unlike": sorted(unlike)[:10], "failures": failed[:5]})
    return rows


def table(rows, say):
    if not rows:
        return
    say(f"\n same {rows[0]['docs']} PDFs, one thread   CPU-s   of PyMuPDF's   failed (PyMuPDF reads)"
        f"   overlap < {GOAL_OVERLAP} / < 0.5   lowest")
    for r in rows:
        say(f" {r['engine']:24} {r['cpu_s']:8.1f} {r['cpu_of_pymupdf']:10.2f}×"
            f" {r['failed']:8} ({r['failed_read_by_pymupdf']})"
            f" {r['overlap_below_0_9']:14} / {r['overlap_below_0_5']:<4}"
            f" {'-' if r['lowest_overlap'] is None else r['lowest_overlap']:>8}")
    ours = next(r for r in rows if r["engine"] == "ai_loader")
    say(f" goals: 0 failed that PyMuPDF reads ({ours['failed_read_by_pymupdf']}), overlap ≥ {GOAL_OVERLAP} on each"
        f" document with text ({ours['compared'] - ours['overlap_below_0_9']} of {ours['compared']}), CPU ≤"
        f" {GOAL_CPU_RATIO}× PyMuPDF's ({ours['cpu_of_pymupdf']}×)")
    for o, path in ours["unlike"]:
        say(f"   overlap {o}: {path}")


def read_with(engine, out_dir, paths):
    """The program's side: reads each path, writes its text into out_dir, prints a JSON
    list of {text: file or None, error: message or None}."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import pdf_engines
    program, library = pdf_engines.installed()
    results = []
    for n, path in enumerate(paths):
        text, error = None, None
        try:
            if engine == "ai_loader":
                text, error = pdf_engines.ai_loader_text(path, program, library)
            else:
                text = getattr(pdf_engines, f"{engine}_text")(path)
        except Exception as e:  # the engine's failure on this file
            error = f"{type(e).__name__}: {e}"
        name = None
        if text is not None:
            name = os.path.join(out_dir, f"{n}.txt")
            with open(name, "w") as f:
                f.write(text)
        results.append({"text": name, "error": error})
    print(json.dumps(results))


if __name__ == "__main__":
    read_with(sys.argv[1], sys.argv[2], sys.stdin.read().split())
