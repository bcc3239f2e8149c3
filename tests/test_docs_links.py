"""Every link a reader can follow resolves: in README.md and docs/*.md, and `docs/<page>.md#<anchor>` in the code.

A relative link must name a file that exists, and its `#anchor` a heading of that page (GitHub's
anchors: the heading's text in lower case, punctuation dropped, spaces to `-`, `-1`, `-2` for
repeats) or an explicit `<a id="...">`. Code comments cite sections as `docs/outputs.md#delivery`;
a section renamed or moved must take its citations along.
"""

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [
    path
    for folder in ("utopia", "dataflows", "tests", "kafka")
    for path in sorted((ROOT / folder).rglob("*"))
    if path.suffix in (".py", ".sh", ".xml")
] + [ROOT / "Makefile", ROOT / "pyproject.toml"]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]*)\)")  # [text](target), a [nested] pair in the text too
HEADING = re.compile(r"^#{1,6} +(.+?) *#* *$", re.MULTILINE)
EXPLICIT = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
CITED = re.compile(r"\bdocs/[\w-]+\.md(?:#[\w-]+)?")


def prose(text: str) -> str:
    """The page without its code blocks and code spans: a `[x](y)` or `# x` there is code, not a link or heading."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and code marks dropped) lowercased, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text()
    found: set[str] = set(EXPLICIT.findall(text))
    seen: Counter[str] = Counter()
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def broken(target: str, origin: Path, source: str) -> str | None:
    """What is wrong with a link to `target` written in the file `origin`, or None when it resolves."""
    path, _, anchor = target.partition("#")
    page = (origin.parent / path).resolve() if path else origin
    if not page.exists():
        return f"{source}: links to {target}, but {_shown(page)} does not exist"
    if anchor and page.suffix == ".md" and anchor not in anchors(page):
        return f"{source}: links to {target}, but {_shown(page)} has no heading or <a id> `{anchor}`"
    return None


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_of_a_page_resolves(page):
    source = str(page.relative_to(ROOT))
    targets = [target for target in LINK.findall(prose(page.read_text())) if not re.match(r"^[a-z]+:", target)]
    assert [problem for target in targets if (problem := broken(target, page, source))] == []


def test_every_docs_page_cited_in_the_code_or_the_pages_resolves():
    """`docs/outputs.md#delivery` in a comment, a docstring or a page's prose, read from the repository's root."""
    cited = [
        (cited, f"{path.relative_to(ROOT)}:{number}")
        for path in CODE + PAGES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for cited in CITED.findall(line)
    ]
    assert cited, "no citation found: the pattern no longer matches how the code cites the docs"
    assert [problem for target, source in cited if (problem := broken(target, ROOT / "README.md", source))] == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Bad input and dead letters", "bad-input-and-dead-letters"),
        ("must_see_venue", "must_see_venue"),
        ("Your own Kafka or Confluent Cloud", "your-own-kafka-or-confluent-cloud"),
        ("`utopia tail`: reading an output, and 2.5x (!)", "utopia-tail-reading-an-output-and-25x-"),
        ("See [Delivery](#delivery)", "see-delivery"),
    ],
)
def test_anchors_follow_githubs_rules(heading, anchor):
    assert slug(heading) == anchor


def test_a_missing_page_or_anchor_is_named(tmp_path):
    page = tmp_path / "a.md"
    page.write_text('# Top\n\n## Same\n\n## Same\n\n<a id="kept"></a>\n\n```\n# not a heading\n```\n')
    assert anchors(page) == {"top", "same", "same-1", "kept"}
    assert broken("#same-1", page, "a.md:1") is None
    assert broken("a.md#kept", page, "a.md:1") is None
    assert broken("#not-a-heading", page, "a.md:1") == (
        f"a.md:1: links to #not-a-heading, but {page} has no heading or <a id> `not-a-heading`"
    )
    assert broken("b.md#top", page, "a.md:1") == f"a.md:1: links to b.md#top, but {tmp_path / 'b.md'} does not exist"
