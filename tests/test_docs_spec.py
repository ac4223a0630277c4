"""docs/spec.md and docs/style.md say what the code does (issue 16).

Every list checked here is derived from the code at test time: the ``SPEC §X`` / ``STYLE lesson
N`` citations in the packages, the policy keys and defaults ``scoring.policy`` loads, the names
of ``trajectory.contract``, the column types of the store's DDL, the options of the three command
parsers and the exception classes. A change to any of them fails here until the docs say it too.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from maps.tiles import TileConfig
from scoring import export, inputs, policy, quality
from trajectory import clean, contract, engine, errors, flags, store

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SPEC = DOCS / "spec.md"
STYLE = DOCS / "style.md"
PACKAGES = ("trajectory", "scoring", "maps")

SPEC_CITATION = re.compile(r"SPEC\s*§\s*(\d+(?:\.\d+)*)")
STYLE_CITATION = re.compile(r"STYLE\s+lessons?\s+(\d+(?:\s*(?:,|and|&)\s*\d+)*)", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.MULTILINE)
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
# a table row whose first two cells are code spans: | `key` | `value` | …
CODE_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`?([^|`]*)`?\s*\|", re.MULTILINE)
BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, title, offset) of each Markdown heading outside code blocks."""
    fenced = [(m.start(), m.end()) for m in re.finditer(r"^```.*?^```", text, re.MULTILINE | re.DOTALL)]
    return [
        (len(m.group(1)), m.group(2), m.start())
        for m in HEADING.finditer(text)
        if not any(a <= m.start() < b for a, b in fenced)
    ]


def _section(text: str, title: Callable[[str], bool]) -> str:
    """The text under the first heading whose title satisfies ``title``, up to the next heading of its level or above."""
    heads = _headings(text)
    for i, (level, name, start) in enumerate(heads):
        if title(name):
            end = next((s for lv, _, s in heads[i + 1 :] if lv <= level), len(text))
            return text[start:end]
    raise AssertionError(f"no heading matching {title} in the document")


def _spec_section(number: str) -> str:
    return _section(_text(SPEC), lambda t: t.split()[0] == f"§{number}")


def _source_files() -> Iterator[Path]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*")):
            if path.suffix in (".py", ".toml") and "vendor" not in path.parts:
                yield path


def _citations(pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
    """(file:line, cited number, line text) of every citation in the packages' code and TOML."""
    found = []
    for path in _source_files():
        for n, line in enumerate(_text(path).splitlines(), start=1):
            for m in pattern.finditer(line):
                for number in re.findall(r"\d+(?:\.\d+)*", m.group(1)):
                    found.append((f"{path.relative_to(ROOT)}:{n}", number, line.strip()))
    return found


# --- citations ----------------------------------------------------------------------------------


def test_every_spec_citation_resolves_to_a_section_of_docs_spec() -> None:
    sections = {t.split()[0][1:] for _, t, _ in _headings(_text(SPEC)) if t.startswith("§")}
    cited = _citations(SPEC_CITATION)
    assert cited, "no SPEC § citation found: has the citation form changed?"
    unresolved = [f"{where}: SPEC §{number} ({line})" for where, number, line in cited if number not in sections]
    assert not unresolved, "citations with no '§N' heading in docs/spec.md:\n" + "\n".join(unresolved)


def test_every_style_citation_resolves_to_a_lesson_of_docs_style() -> None:
    lessons = {m.group(1) for _, t, _ in _headings(_text(STYLE)) if (m := re.match(r"Lesson (\d+)\b", t))}
    assert lessons == {str(n) for n in range(1, len(lessons) + 1)}, f"lessons are not numbered 1…N: {sorted(lessons)}"
    cited = _citations(STYLE_CITATION)
    assert cited, "no STYLE lesson citation found: has the citation form changed?"
    unresolved = [f"{where}: STYLE lesson {number} ({line})" for where, number, line in cited if number not in lessons]
    assert not unresolved, "citations with no 'Lesson N' heading in docs/style.md:\n" + "\n".join(unresolved)


def test_citation_patterns_read_the_forms_the_code_uses() -> None:
    assert [m.group(1) for m in SPEC_CITATION.finditer("(SPEC §1.1, weekly rules) and SPEC § 2.")] == ["1.1", "2"]
    lessons = STYLE_CITATION.search("(STYLE lessons 2 and 4)")
    assert lessons is not None and re.findall(r"\d+", lessons.group(1)) == ["2", "4"]


# --- links --------------------------------------------------------------------------------------


def _slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, blanks to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", [SPEC, STYLE], ids=lambda p: p.name)
def test_links_of_the_docs_resolve(doc: Path) -> None:
    text = _text(doc)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, fragment = target.partition("#")
        path = doc.parent / file if file else doc
        if not path.is_file():
            broken.append(f"{target}: no file {path.relative_to(ROOT)}")
            continue
        if fragment:
            other = _text(path)
            anchors = set(ANCHOR.findall(other)) | {_slug(t) for _, t, _ in _headings(other)}
            if fragment not in anchors:
                broken.append(f"{target}: no heading or anchor '{fragment}' in {path.name}")
    assert not broken, f"broken links in {doc.name}:\n" + "\n".join(broken)


# --- policy keys --------------------------------------------------------------------------------


def _key(parts: tuple[str, ...]) -> str:
    return ".".join(p if BARE_KEY.match(p) else json.dumps(p, ensure_ascii=False) for p in parts)


def _toml_value(value: Any) -> str:
    """A default as TOML writes it (the form docs/spec.md shows)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key((str(k),))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def _leaves(table: Mapping[str, Any], at: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for name, value in table.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, (*at, name))
        else:
            yield _key((*at, name)), value


def _policy_defaults() -> dict[str, str]:
    """Every key the policy defines with its default: the default TOML as ``load_policy`` reads it,
    the optional tables ``policy.OPTIONAL_TABLES`` lets a workspace add, and ``[maps]`` (``TileConfig``)."""
    defaults = {k: _toml_value(v) for k, v in _leaves(policy.load_policy().raw)}
    optional = policy.OPTIONAL_TABLES
    for table in optional:
        if not any(len(t) > len(table) and t[: len(table)] == table for t in optional):
            defaults.setdefault(_key(table), "{}")
    for f in dataclasses.fields(TileConfig):
        defaults.setdefault(_key(("maps", f.name)), _toml_value(f.default))
    return defaults


def _spec_policy_rows() -> dict[str, str]:
    return {key: value.strip() for key, value in CODE_ROW.findall(_spec_section("5"))}


def test_policy_defaults_read_as_the_toml_file_writes_them() -> None:
    defaults = _policy_defaults()
    assert defaults["patrol.points.max_gap_s"] == "300.0"
    assert defaults['items."6.1a".max'] == "15.0"
    assert defaults['events.category_minimums."城市管理+环境保护"'] == "40"
    assert defaults["events.ranking_bonus"] == "{}"
    assert defaults["gps.columns"] == "{}"
    assert defaults["maps.include_key_in_exports"] == "false"
    assert len(defaults) > 150


def test_every_policy_key_is_in_the_spec_with_its_default() -> None:
    defaults, rows = _policy_defaults(), _spec_policy_rows()
    missing = [f"{k} = {v}" for k, v in defaults.items() if k not in rows]
    wrong = [f"{k}: spec says {rows[k]}, the code {v}" for k, v in defaults.items() if k in rows and rows[k] != v]
    unknown = [k for k in rows if k not in defaults]
    assert not missing, "policy keys missing from docs/spec.md §5:\n" + "\n".join(missing)
    assert not wrong, "defaults in docs/spec.md §5 that differ from the code:\n" + "\n".join(wrong)
    assert not unknown, "keys in docs/spec.md §5 the policy does not define:\n" + "\n".join(unknown)


# --- contract names -----------------------------------------------------------------------------


def _public_constants(module: Any) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str | tuple | dict)
    }


def _named(text: str, value: str) -> bool:
    """An identifier is named as a code span; a Chinese label as it is written."""
    return f"`{value}`" in text if value.isascii() else value in text


def test_every_name_and_label_of_the_contract_is_in_the_spec() -> None:
    text = _text(SPEC)
    absent = []
    for name, value in _public_constants(contract).items():
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, tuple):
            values = list(value)
        else:
            values = [*value, *value.values()]
        absent += [f"contract.{name}: {v!r}" for v in values if not _named(text, str(v))]
    assert not absent, "names of trajectory/contract.py missing from docs/spec.md:\n" + "\n".join(absent)


def test_chinese_labels_stand_beside_their_identifiers() -> None:
    lines = _text(SPEC).splitlines()
    labels = {
        **{f"contract.{n}": v for n, v in _public_constants(contract).items() if n.endswith("_ZH")},
        "quality.FLAG_LABELS": quality.FLAG_LABELS,
    }
    apart = [
        f"{name}: `{key}` {label}"
        for name, table in labels.items()
        for key, label in table.items()
        if not any(f"`{key}`" in line and label in line for line in lines)
    ]
    assert not apart, "labels not on a line with their identifier in docs/spec.md:\n" + "\n".join(apart)


def _ddl_columns(ddl: str) -> dict[str, str]:
    """``name TYPE [PRIMARY KEY], …`` -> name -> TYPE."""
    return {name: kind for name, kind, *_ in (part.split() for part in ddl.split(",") if part.strip())}


def _code_tables() -> dict[str, dict[str, str]]:
    """Table -> column -> DuckDB type, as the store and the scoring export create them."""
    tables = {t: _ddl_columns(ddl) for t, ddl in store.TABLE_DDL.items()}
    for view, sql in store.EMPTY_VIEW_SQL.items():
        tables[view] = {col: kind for kind, col in re.findall(r"NULL::(\w+) AS (\w+)", sql)}
    for table, columns in export._DDL.items():
        tables.setdefault(table, {}).update(columns)
    return tables


def _spec_tables() -> dict[str, dict[str, str]]:
    """Table -> column -> type of each ``#### `table``` section of spec §2.6."""
    section = _spec_section("2.6")
    out = {}
    for part in re.split(r"^####\s+", section, flags=re.MULTILINE)[1:]:
        name = re.match(r"`(\w+)`", part)
        if name:
            out[name.group(1)] = {col: kind.split()[0] if kind else "" for col, kind in CODE_ROW.findall(part)}
    return out


def test_every_table_and_column_type_of_the_store_is_in_the_spec() -> None:
    code, spec = _code_tables(), _spec_tables()
    assert {contract.GPS_POINT, contract.WORKER_DAY, contract.DEDUCTION, store.MONTH_REQUEST} <= set(code)
    problems = [f"table {t} has no '#### `{t}`' section in §2.6" for t in code if t not in spec]
    problems += [f"§2.6 describes {t}, which the code does not create" for t in spec if t not in code]
    for table, columns in code.items():
        documented = spec.get(table, {})
        for col, kind in columns.items():
            if table in spec and col not in documented:
                problems.append(f"{table}.{col} ({kind}) is not listed")
            elif table in spec and documented[col] != kind:
                problems.append(f"{table}.{col}: spec says {documented[col]}, the code {kind}")
    assert not problems, "docs/spec.md §2.6 and the store disagree:\n" + "\n".join(problems)


def test_the_contract_columns_are_listed_under_their_tables() -> None:
    spec = _spec_tables()
    constants = _public_constants(contract)
    bound = {
        constants[name[: -len("_COLUMNS")]]: value
        for name, value in constants.items()
        if name.endswith("_COLUMNS") and isinstance(constants.get(name[: -len("_COLUMNS")]), str)
    }
    assert contract.WORKER_DAY in bound and contract.QUARANTINE in bound
    bound[contract.WORKER_DAY] = (*bound[contract.WORKER_DAY], *engine.WORKER_DAY_EXTRA)
    absent = [f"{t}.{col}" for t, columns in bound.items() for col in columns if col not in spec.get(t, {})]
    assert not absent, "columns missing from their table's section in docs/spec.md §2.6:\n" + "\n".join(absent)


def test_every_indicator_table_column_and_value_is_in_the_spec() -> None:
    section = _spec_section("2.4")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\|\s*`(\w+)`.*$", section, re.MULTILINE)}
    problems = [f"required table {t} not named" for t in inputs.REQUIRED_TABLES if f"`{t}`" not in section]
    for table, columns in inputs.SCHEMA.items():
        row = rows.get(table)
        if row is None:
            problems.append(f"table {table} has no row in §2.4")
            continue
        problems += [f"{table}: Chinese name {a}" for a in inputs.TABLE_ALIASES[table] if a not in row]
        problems += [f"{table}: item {i}" for i in inputs.TABLE_ITEMS[table] if i not in row]
        for col in columns:
            if f"`{col.name}`" not in row:
                problems.append(f"{table}.{col.name}")
            for value, aliases in (col.values or {}).items():
                if f"`{value}`" not in section or aliases[0] not in section:
                    problems.append(f"{table}.{col.name} value {value} ({aliases[0]})")
    problems += [f"header {zh}" for names in inputs.COLUMN_ALIASES.values() for zh in names if zh not in section]
    assert not problems, "docs/spec.md §2.4 misses:\n" + "\n".join(problems)


def test_engine_vocabularies_are_in_the_spec() -> None:
    text = _text(SPEC)
    words = [*clean.REASONS, *flags.FLAGS, *quality.FLAG_LABELS, *store.PARQUET_VIEWS]
    absent = [w for w in words if f"`{w}`" not in text]
    assert not absent, f"not in docs/spec.md: {absent}"


# --- commands, errors ---------------------------------------------------------------------------

COMMANDS = {"3.1": "trajectory.run", "3.2": "scoring.export", "3.3": "maps.__main__"}


def _options(module: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The options a command's ``--help`` lists (argparse's option lines), without ``--help``."""
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    found = set()
    for line in lines:
        invocation = re.match(r"^\s{2}(-\S.*?)(?:\s{2,}|$)", line)
        if invocation:
            found |= set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", invocation.group(1)))
    return found - {"-h", "--help"}


@pytest.mark.parametrize("number", list(COMMANDS), ids=list(COMMANDS.values()))
def test_every_option_of_each_command_is_in_the_spec(number: str, capsys: pytest.CaptureFixture[str]) -> None:
    options = _options(COMMANDS[number], capsys)
    assert "--workspace" in options and "--month" in options
    section = _spec_section(number)
    documented = {
        o for first, _ in CODE_ROW.findall(section) for o in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", first)
    }
    documented |= {
        o
        for cells in re.findall(r"^\|\s*((?:`[^`]+`,?\s*)+)\|", section, re.MULTILINE)
        for o in re.findall(r"`(--?[A-Za-z][\w-]*)", cells)
    }
    assert options - documented == set(), f"options of {COMMANDS[number]} missing from spec §{number}"
    assert documented - options == set(), f"spec §{number} lists options {COMMANDS[number]} does not have"


def test_every_exception_class_is_in_the_spec() -> None:
    section = _spec_section("6")
    classes = [
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert "InputError" in classes
    assert [c for c in classes if f"`{c}`" not in section] == []


# --- the style guide's examples -----------------------------------------------------------------


def test_the_style_guides_examples_run() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", _text(STYLE), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4
    attempted = 0
    for i, code in enumerate(blocks):
        name = f"style_example_{i}"
        namespace: dict[str, Any] = {"__name__": name}
        exec(compile(code, f"docs/style.md, python block {i + 1}", "exec"), namespace)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        for obj in list(namespace.values()):
            if inspect.isfunction(obj) and obj.__module__ == name:
                for test in doctest.DocTestFinder().find(obj, obj.__name__, globs=dict(namespace)):
                    runner.run(test)
        result = runner.summarize(verbose=False)
        assert result.failed == 0, f"docs/style.md, python block {i + 1}: {result.failed} examples failed"
        attempted += result.attempted
    assert attempted >= 10
