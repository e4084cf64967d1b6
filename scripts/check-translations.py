#!/usr/bin/env python3
"""Checks that every README.zh-CN.md stays in step with the README.md beside it.

A translation drifts silently: a section added to the English README, a command changed, a
config key renamed. This compares what must not differ between the two languages:
  - the headings: same number, same levels, same order;
  - the fenced code blocks: identical, in the same order;
  - the tables: same number, same number of body rows, and the same `code` in each row's
    first column (the config keys; prose cells are translated and not compared);
  - the cross links: the English file links to README.zh-CN.md, the Chinese one to README.md.
Usage: check-translations.py [--self-test]   (exit 1 on any difference)
--self-test also shows each check refuses a pair with one thing broken.
"""
import pathlib
import re
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP = {"target", "node_modules", ".venv", ".git"}


def structure(text):
    """Headings, code blocks and tables of a Markdown text, outside code blocks for the first."""
    headings, blocks, tables = [], [], []
    block, table = None, None
    for line in text.splitlines():
        if block is not None:
            if line.lstrip().startswith("```"):
                blocks.append("\n".join(block))
                block = None
            else:
                block.append(line)
            continue
        if line.lstrip().startswith("```"):
            block = [line.strip()]
            continue
        if line.startswith("|"):
            if table is None:
                table = []
                tables.append(table)
            table.append(line)
            continue
        table = None
        match = re.match(r"(#{1,6}) ", line)
        if match:
            headings.append(len(match.group(1)))
    keys = []
    for rows in tables:
        body = [r for r in rows[1:] if not re.fullmatch(r"[|:\- ]+", r)]
        keys.append([re.findall(r"`([^`]*)`", r.split("|")[1]) for r in body])
    return headings, blocks, keys


def compare(english, chinese):
    """The differences between a README.md and its README.zh-CN.md, as messages."""
    en_text, zh_text = english.read_text(), chinese.read_text()
    (en_h, en_b, en_k), (zh_h, zh_b, zh_k) = structure(en_text), structure(zh_text)
    problems = []
    if en_h != zh_h:
        problems.append(f"headings differ: levels {en_h} vs {zh_h}")
    if len(en_b) != len(zh_b):
        problems.append(f"{len(en_b)} code blocks vs {len(zh_b)}")
    for i, (a, b) in enumerate(zip(en_b, zh_b)):
        if a != b:
            problems.append(f"code block {i + 1} differs (first line {a.splitlines()[0]!r})")
    if len(en_k) != len(zh_k):
        problems.append(f"{len(en_k)} tables vs {len(zh_k)}")
    for i, (a, b) in enumerate(zip(en_k, zh_k)):
        if a != b:
            problems.append(f"table {i + 1}: first-column keys {a} vs {b}")
    if "README.zh-CN.md" not in en_text[:600]:
        problems.append("the English README does not link to README.zh-CN.md near its top")
    if "README.md" not in zh_text[:600]:
        problems.append("the Chinese README does not link back to README.md near its top")
    return problems


def pairs(root):
    for chinese in sorted(root.rglob("README.zh-CN.md")):
        if SKIP.isdisjoint(chinese.relative_to(root).parts):
            yield chinese.with_name("README.md"), chinese


def check(root):
    found, failed = 0, 0
    for english, chinese in pairs(root):
        found += 1
        problems = compare(english, chinese) if english.exists() else ["no README.md beside it"]
        name = chinese.relative_to(root)
        for problem in problems:
            print(f"FAIL  {name}: {problem}")
        if problems:
            failed += 1
        else:
            print(f"PASS  {name} matches README.md")
    return found, failed


def self_test():
    """Each check must refuse a copy of a real pair with one thing broken."""
    english, chinese = next(pairs(ROOT))
    zh = chinese.read_text()
    breakages = {
        "a heading removed": re.sub(r"^#+ .*\n", "", zh, count=1, flags=re.M),
        "a code block changed": re.sub(r"^(```.*\n)", r"\1extra\n", zh, count=1, flags=re.M),
        "a table row removed": re.sub(r"^\|.*`.*\n", "", zh, count=1, flags=re.M),
        "the back link removed": zh.replace("README.md", "README", 1),
    }
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for what, broken in breakages.items():
            (pathlib.Path(tmp) / "README.zh-CN.md").write_text(broken)
            shutil.copy(english, pathlib.Path(tmp) / "README.md")
            if broken != zh and compare(pathlib.Path(tmp) / "README.md", pathlib.Path(tmp) / "README.zh-CN.md"):
                print(f"PASS  self-test: {what} is refused")
            else:
                print(f"FAIL  self-test: {what} is not refused")
                failures += 1
    return failures


def main():
    found, failed = check(ROOT)
    if found == 0:
        print("FAIL  no README.zh-CN.md found")
        failed = 1
    if "--self-test" in sys.argv[1:]:
        failed += self_test()
    print(f"check-translations: {found} pairs, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
