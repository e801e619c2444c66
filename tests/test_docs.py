"""The documentation sources cover every CLI step, bundled model and catalogue column.

A fast guard for the Sphinx site in ``docs/`` (built in CI by ``sphinx-build -W``): these checks
read the sources only, so a new step, model or column without documentation fails here, in the
test run, rather than going unnoticed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PIPELINES = ("quasar", "dla", "sysnet", "transient")


def _text(*patterns: str) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for pattern in patterns
        for p in sorted(DOCS.glob(pattern))
        if "_build" not in p.parts
    )


def _steps() -> list[tuple[str, str]]:
    from surveynet.cli import build_parser

    out = []
    for action in build_parser(None)._actions:
        if isinstance(action, argparse._SubParsersAction):
            for group, parser in action.choices.items():
                subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
                steps = list(subs[0].choices) if subs else [""]
                out += [(group, step) for step in steps]
    return out


def test_every_cli_step_is_documented() -> None:
    prose = _text("*.md", "guide/*.md", "tutorial/*.py")
    cli_page = _text("cli.rst")
    steps = _steps()
    assert len(steps) > 20
    missing = [
        f"surveynet {g} {s}".strip() for g, s in steps if f"surveynet {g} {s}".strip() not in prose
    ]
    assert not missing, f"steps with no prose in docs/: {missing}"
    # and the generated reference covers every group and root command
    groups = {g for g, _ in steps}
    assert {m for m in re.findall(r"surveynet-cli:: (\S+)", cli_page)} == groups


def test_every_bundled_model_has_a_card() -> None:
    from surveynet.io.model import list_bundled_models

    cards = set(re.findall(r"```\{surveynet-model\} (\S+)", _text("models.md")))
    names = {m["name"] for m in list_bundled_models()} | {
        p.parent.name for p in (DOCS.parent / "src" / "surveynet" / "models").glob("*/config.json")
    }
    assert names, "no bundled models found"
    assert names <= cards, f"bundled models without a card in docs/models.md: {names - cards}"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_pipeline_guide_lists_its_config(pipeline: str) -> None:
    guide = _text(f"guide/{pipeline}.md")
    assert f"```{{surveynet-config}} {pipeline}" in guide


def test_catalogue_columns_are_documented() -> None:
    from surveynet.dla.catalog import DLA_COLUMNS, QSO_COLUMNS
    from surveynet.transient.catalog import CANDIDATE_COLUMNS

    guides = _text("guide/*.md")
    columns = {*DLA_COLUMNS, *QSO_COLUMNS, *CANDIDATE_COLUMNS, "Z_QN", "IS_QSO_QN", "QN_FLAG"}
    columns |= {"HPIX", "SELECTION", "WEIGHT", "LABEL0", "LABEL1", "REAL"}
    missing = sorted(c for c in columns if f"`{c}`" not in guides)
    assert not missing, f"catalogue columns not in docs/guide: {missing}"
