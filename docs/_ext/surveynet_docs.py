"""Sphinx helpers of the surveynet documentation, generated from the package itself.

Directives (usable from MyST pages as ```` ```{surveynet-cli} quasar ```` etc.):

``surveynet-cli GROUP``
    The ``--help`` text of every step of one command group (``quasar``, ``dla``, ``sysnet``,
    ``transient``, ``simulate``) or of a root command (``models``, ``demo``, ``bench``), taken
    from :func:`surveynet.cli.build_parser`, so the reference cannot drift from the code.
``surveynet-config PIPELINE``
    Every configuration key of a pipeline's config root (``--set section.key=value``) with its
    default and the description from the dataclass docstrings.
``surveynet-model NAME``
    The provenance block of a bundled model, read from its ``config.json`` and
    ``model.safetensors``: pipeline, architecture, parameters, training data, seed and command.

Tutorial support for sphinx-gallery: :func:`reset_argv` (command-line arguments of each
tutorial) and :func:`surveynet_scraper` (shows the figures that surveynet's plot functions return,
which are not pyplot figures, and the PNG files that a tutorial script writes).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parents[1]
#: Where the executed tutorials write their outputs (inside the build folder, never the sources).
TUTORIAL_OUT = DOCS / "_build" / "tutorial_out"


# ---- node helpers ---------------------------------------------------------------------------


def _inline(text: str) -> list[nodes.Node]:
    """Plain text where ``code`` spans become literals."""
    parts = text.split("``")
    out: list[nodes.Node] = []
    for k, part in enumerate(parts):
        if not part:
            continue
        out.append(nodes.literal(part, part) if k % 2 else nodes.Text(part))
    return out


def _table(header: list[str], rows: list[list[str]], widths: list[int]) -> nodes.table:
    """A docutils table; cells are plain text with ````code```` spans."""
    table = nodes.table(classes=["surveynet-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)

    def row(cells: list[str]) -> nodes.row:
        r = nodes.row()
        for c in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", *_inline(c))
            r += entry
        return r

    if any(header):
        thead = nodes.thead()
        thead += row(header)
        group += thead
    tbody = nodes.tbody()
    for cells in rows:
        tbody += row(cells)
    group += tbody
    return table


def _literal(text: str, language: str = "text") -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = language
    return block


# ---- surveynet-cli ----------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_commands() -> dict[str, dict[str, argparse.ArgumentParser]]:
    """``{group: {step: parser}}`` of the whole command line (root commands under ``""``)."""
    from surveynet.cli import build_parser

    root = build_parser(None)
    out: dict[str, dict[str, argparse.ArgumentParser]] = {"": {}}
    for name, parser in _subparsers(root).items():
        steps = _subparsers(parser)
        if steps:
            out[name] = steps
        else:
            out[""][name] = parser
    return out


def _help(parser: argparse.ArgumentParser) -> str:
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


class CliDirective(SphinxDirective):
    """``surveynet-cli GROUP``: every step of GROUP with its ``--help`` text."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        """One section per step: title, description, ``--help`` text."""
        group = self.arguments[0]
        commands = cli_commands()
        if group in commands:
            parsers = {
                f"surveynet {group} {step}": p for step, p in sorted(commands[group].items())
            }
        elif group in commands[""]:
            parsers = {f"surveynet {group}": commands[""][group]}
        else:
            raise self.error(f"surveynet-cli: no command group {group!r}")
        out: list[nodes.Node] = []
        for title, parser in parsers.items():
            sid = nodes.make_id(title)
            section = nodes.section(ids=[sid], names=[nodes.fully_normalize_name(title)])
            section += nodes.title(title, "", nodes.literal(title, title))
            if parser.description:
                section += nodes.paragraph("", parser.description)
            section += _literal(_help(parser))
            self.state.document.note_implicit_target(section, section)
            out.append(section)
        return out


# ---- surveynet-config -------------------------------------------------------------------------


def _field_docs(cls: type) -> dict[str, str]:
    from numpydoc.docscrape import NumpyDocString

    doc = NumpyDocString(inspect.getdoc(cls) or "")
    desc: dict[str, str] = {}
    for section in ("Attributes", "Parameters"):
        for p in doc[section]:
            for name in p.name.split(","):
                desc[name.strip()] = " ".join(p.desc)
    return desc


def config_keys(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, description)`` of every leaf field of a config dataclass."""
    desc = _field_docs(cls)
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if dataclasses.is_dataclass(default):
            rows += config_keys(type(default), f"{prefix}{f.name}.")
        else:
            rows.append((prefix + f.name, repr(default), desc.get(f.name, "")))
    return rows


def config_class(name: str) -> type:
    """A pipeline's config root (``quasar``) or a dotted class path."""
    if "." in name:
        import importlib

        module, _, attr = name.rpartition(".")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    from surveynet.registry import get_config, load_pipelines

    load_pipelines()
    return get_config(name)


class ConfigDirective(SphinxDirective):
    """``surveynet-config PIPELINE``: table of every config key, default and meaning."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        """An introduction line and the table."""
        cls = config_class(self.arguments[0])
        rows = [[f"``{k}``", f"``{d}``", text] for k, d, text in config_keys(cls)]
        intro = nodes.paragraph(
            "",
            "",
            nodes.Text("Config root "),
            nodes.literal("", f"{cls.__module__}.{cls.__qualname__}"),
            nodes.Text(f": {len(rows)} keys, each settable with "),
            nodes.literal("", "--set key=value"),
            nodes.Text(" or in a "),
            nodes.literal("", "--config run.json|yaml"),
            nodes.Text(" file."),
        )
        return [intro, _table(["key", "default", "meaning"], rows, [25, 15, 60])]


# ---- surveynet-model --------------------------------------------------------------------------


def _n_parameters(path: Path) -> tuple[int, list[str]]:
    """Number of stored values and tensor names of a safetensors file (header only)."""
    import struct

    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    total = 0
    names = []
    for key, val in header.items():
        if key == "__metadata__":
            continue
        names.append(key)
        size = 1
        for s in val["shape"]:
            size *= int(s)
        total += size
    return total, names


class ModelDirective(SphinxDirective):
    """``surveynet-model NAME``: provenance of a bundled model from its files."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        """A two-column table and the training commands."""
        from surveynet.io.model import bundled_models_dir

        name = self.arguments[0]
        folder = bundled_models_dir() / name
        if not (folder / "config.json").is_file():
            raise self.error(f"surveynet-model: no bundled model {name!r}")
        cfg = json.loads((folder / "config.json").read_text())
        self.env.note_dependency(str(folder / "config.json"))
        training = cfg.get("training", {})
        rows: list[list[str]] = [["bundled name", f"``{name}``"]]
        if cfg.get("name") not in (None, name):
            rows.append(["name in config.json", f"``{cfg['name']}``"])
        rows += [
            ["pipeline", f"``{cfg.get('pipeline')}``"],
            ["architecture", f"``{cfg.get('architecture')}``"],
        ]
        weights = folder / "model.safetensors"
        if weights.is_file():
            n, keys = _n_parameters(weights)
            rows.append(
                [
                    "weights",
                    f"``model.safetensors``: {weights.stat().st_size / 1024:,.0f} KiB, "
                    f"{len(keys)} tensors, {n:,} values",
                ]
            )
        labels = cfg.get("label_names")
        if labels:
            rows.append(["outputs", ", ".join(f"``{x}``" for x in labels)])
        for key, label in (
            ("n_train", "training examples"),
            ("n_val", "validation examples"),
            ("n_sightlines", "training sightlines"),
            ("n_train_samples", "training samples"),
            ("n_files", "training files"),
            ("n_absorbers", "training absorbers"),
            ("n_real", "of which real"),
            ("log_loss", "training log-loss"),
            ("data_hash", "training-data hash"),
            ("config_hash", "config hash"),
            ("seed", "seed"),
            ("torch_version", "trained with torch"),
        ):
            value = training.get(key)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int):
                rows.append([label, f"{value:,}"])
            elif isinstance(value, float):
                rows.append([label, f"{value:.4g}"])
            else:
                rows.append([label, f"``{value}``"])
        classes = training.get("classes")
        if isinstance(classes, dict):
            rows.append(["classes", ", ".join(f"{k} {v:,}" for k, v in classes.items())])
        for key in ("source", "source_sha256", "licence", "license"):
            if training.get(key) is not None:
                rows.append([key, f"``{training[key]}``"])
        rows.append(["surveynet version", f"``{cfg.get('surveynet_version')}``"])
        out: list[nodes.Node] = [_table(["", ""], rows, [20, 80])]
        for key, text in (
            ("data_command", "Commands that made its training data:"),
            ("command", "Command that produced it (from its config.json):"),
            ("reproduce", "To reproduce it:"),
        ):
            if training.get(key):
                out.append(nodes.paragraph("", text))
                out.append(_literal(str(training[key]).replace(" ; ", "\n"), "bash"))
        return out


# ---- docstring clean-up at build time -------------------------------------------------------

#: ``|x|`` as docutils would read a substitution reference (absolute values in the docstrings).
_SUBST = re.compile(r"(?<![\\\w`|])\|(?=\S)([^|`]*?\S)\|(?![\w|])")
#: ``*name`` after ``[`` or ``, `` (Python unpacking), which docutils reads as emphasis.
_STAR = re.compile(r"(?<=[\[(])\*(?=\w)|(?<=, )\*(?=\w)")


def _escape_outside_literals(line: str) -> str:
    parts = line.split("``")
    for k in range(0, len(parts), 2):  # even parts are outside ``literal`` spans
        parts[k] = _STAR.sub(r"\\*", _SUBST.sub(r"\\|\1\\|", parts[k]))
    return "``".join(parts)


def clean_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Escape what docutils would misread in the plain-text docstrings of the package.

    The docstrings write absolute values as ``|dz|`` and unpacking as ``[raw, *sizes]``, which
    reStructuredText takes for substitutions and emphasis; they are escaped here (outside
    literal blocks and ````code```` spans) instead of in the source. Runs before numpydoc.
    """
    in_literal = False
    literal_indent = 0
    for k, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_literal:
            if stripped and indent <= literal_indent:
                in_literal = False
            else:
                continue
        if stripped.startswith(">>>") or stripped.startswith("..."):
            continue
        lines[k] = _escape_outside_literals(line)
        if stripped.endswith("::"):
            in_literal = True
            literal_indent = indent
    if name == "surveynet.transient.cli":
        # its step table's first column is one character narrower than ``convert-keras``
        for k, line in enumerate(lines):
            if line.startswith("============  ="):
                lines[k] = "============= " + line[14:]


# ---- sphinx-gallery support ------------------------------------------------------------------


def reset_argv(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """Command-line arguments of an executed tutorial.

    The QuasarNET tutorial is a script with ``--out`` and ``--fast``; the build runs it with the
    CI sizes and writes under ``docs/_build/tutorial_out``. The other tutorials take no
    arguments.
    """
    stem = Path(script_vars["src_file"]).stem
    if stem == "quasarnet_tutorial":
        return ["--fast", "--out", str(TUTORIAL_OUT / stem)]
    return []


class _Scraper:
    """Collect the figures a tutorial block made.

    surveynet's plot functions return :class:`matplotlib.figure.Figure` objects that pyplot
    does not know about, so the default scraper misses them: this one shows every ``Figure``
    bound to a global name of the tutorial that has not been shown yet, and every PNG file
    written since the last block under the tutorial's output folder (its global ``out``, or
    the ``--out`` that :func:`reset_argv` gave it).
    """

    def __init__(self) -> None:
        self.seen: dict[str, set[int]] = {}
        self.files: dict[str, set[Path]] = {}

    def __repr__(self) -> str:  # stable repr: sphinx compares configs between builds
        return "surveynet_scraper"

    def __call__(self, block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
        from matplotlib.figure import Figure
        from sphinx_gallery.scrapers import figure_rst

        src = str(block_vars["src_file"])
        seen = self.seen.setdefault(src, set())
        shown = self.files.setdefault(src, set())
        images: list[str] = []
        it = block_vars["image_path_iterator"]
        for value in list(block_vars["example_globals"].values()):
            if isinstance(value, Figure) and id(value) not in seen:
                seen.add(id(value))
                path = next(it)
                value.savefig(path, dpi=90)
                images.append(path)
        folders = [TUTORIAL_OUT / Path(src).stem]
        out = block_vars["example_globals"].get("out")
        if isinstance(out, Path):
            folders.append(out)
        new = {png for d in folders if d.is_dir() for png in d.rglob("*.png")} - shown
        for png in sorted(new, key=lambda p: (p.stat().st_mtime, str(p))):
            shown.add(png)
            path = next(it)
            shutil.copyfile(png, path)
            images.append(path)
        return figure_rst(images, gallery_conf["src_dir"])


surveynet_scraper = _Scraper()


def _clean_tutorial_out(app: Sphinx) -> None:
    if TUTORIAL_OUT.exists():
        shutil.rmtree(TUTORIAL_OUT)
    TUTORIAL_OUT.mkdir(parents=True, exist_ok=True)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives."""
    app.add_directive("surveynet-cli", CliDirective)
    app.add_directive("surveynet-config", ConfigDirective)
    app.add_directive("surveynet-model", ModelDirective)
    app.connect("builder-inited", _clean_tutorial_out, priority=100)
    app.connect("autodoc-process-docstring", clean_docstring, priority=100)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
