#!/usr/bin/python3
"""Checks that every code excerpt in the docs still matches the source it was taken from.

An excerpt is a fenced code block preceded by a line `<!-- excerpt: PATH -->` (PATH relative
to the repository root). Lines that are exactly `// ...` (any indentation) split the block
into pieces; each piece must appear in PATH as consecutive lines, and the pieces in order.
Exit 1 with the first mismatch of each stale excerpt; 0 when all match.

Usage: tools/check-doc-excerpts.py [FILE.md ...]   (default: docs/*.md)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*excerpt:\s*(\S+)\s*-->")


def excerpts(md_text):
    """Yields (line number, source path, [pieces of lines]) for each excerpt."""
    lines = md_text.splitlines()
    i = 0
    while i < len(lines):
        m = MARKER.search(lines[i])
        if m and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            start, body, j = i + 1, [], i + 2
            while j < len(lines) and not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            pieces, piece = [], []
            for line in body:
                if line.strip() == "// ...":
                    pieces.append(piece)
                    piece = []
                else:
                    piece.append(line)
            pieces.append(piece)
            yield start + 1, m.group(1), [p for p in pieces if p]
            i = j
        i += 1


def find_piece(source_lines, piece, start):
    """Index after the first occurrence of `piece` at or after `start`, or None."""
    n = len(piece)
    for k in range(start, len(source_lines) - n + 1):
        if source_lines[k:k + n] == piece:
            return k + n
    return None


def check(md_path):
    problems = []
    count = 0
    for line_no, rel, pieces in excerpts(md_path.read_text()):
        count += 1
        src = ROOT / rel
        if not src.is_file():
            problems.append(f"{md_path}:{line_no}: {rel} does not exist")
            continue
        source_lines = src.read_text().splitlines()
        pos = 0
        for piece in pieces:
            nxt = find_piece(source_lines, piece, pos)
            if nxt is None:
                problems.append(f"{md_path}:{line_no}: excerpt no longer matches {rel}; "
                                f"first line of the stale piece: {piece[0].strip()!r}")
                break
            pos = nxt
    return count, problems


def main(args):
    files = [pathlib.Path(a) for a in args] or sorted((ROOT / "docs").glob("*.md"))
    total, problems = 0, []
    for f in files:
        n, p = check(f)
        total += n
        problems += p
    for p in problems:
        print(p)
    print(f"{total} excerpts checked, {len(problems)} stale")
    return 1 if problems or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
