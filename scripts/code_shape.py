#!/usr/bin/env python3
"""Checks the code-shape limits outside tests: no source file over 450 lines and no function over
80 lines. Functions are found the way the house style writes them: a definition starting at
column 0 and ending at the matching closing brace at column 0 (bodies of functions defined inside
class bodies are counted as part of their file only).

usage: scripts/code_shape.py [ROOT]   (exit 1 and a list when a limit is exceeded)
"""

import pathlib
import re
import sys

MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80
FOLDERS = ["core", "networks", "env", "agents", "server", "experiments", "apps", "examples", "bench"]
NOT_A_FUNCTION = re.compile(r"^(#|//|/\*|\*|namespace\b|class\b|struct\b|enum\b|union\b|using\b|extern\b|template\s*<\s*>\s*$|}|\s)")


def functions(lines):
    """(name line, first line number, length) of each column-0 function definition."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line or NOT_A_FUNCTION.match(line) or "(" not in line:
            i += 1
            continue
        # The signature may span lines until the opening brace; a one-line body is short anyway.
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith("{") and not lines[j].rstrip().endswith(";"):
            if lines[j].rstrip().endswith("}") or "{" in lines[j]:
                break
            j += 1
        if j < len(lines) and not lines[j].rstrip().endswith("{"):
            i = j + 1
            continue
        if j >= len(lines) or lines[j].rstrip().endswith(";") or "=" in lines[i].split("(")[0]:
            i = j + 1
            continue
        depth, k = 0, j
        while k < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|//.*', "", lines[k])
            depth += code.count("{") - code.count("}")
            if depth <= 0 and k > j or (depth == 0 and code.strip().endswith("}")):
                break
            k += 1
        out.append((line.strip(), i + 1, k - i + 1))
        i = k + 1
    return out


def main(root):
    problems = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".cpp", ".h"):
                continue
            lines = path.read_text().splitlines()
            rel = path.relative_to(root)
            if len(lines) > MAX_FILE_LINES:
                problems.append(f"{rel}: {len(lines)} lines (limit {MAX_FILE_LINES})")
            for name, start, length in functions(lines):
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{start}: function of {length} lines (limit {MAX_FUNCTION_LINES}): {name[:70]}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])))
