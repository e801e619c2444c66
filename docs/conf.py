"""Sphinx configuration of the surveynet documentation.

Build (offline, warnings as errors, as CI does)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The tutorials in ``docs/tutorial/*_tutorial.py`` are executed by sphinx-gallery at every build;
a tutorial that raises stops the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import surveynet  # noqa: E402

# Tutorials and the API pages import matplotlib: never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")
# Two cores shared with other work: keep BLAS and torch to one thread each in the tutorials.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

project = "surveynet"
author = "the surveynet developers"
copyright = "the surveynet developers, BSD-3-Clause"
version = release = surveynet.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "surveynet_docs",  # docs/_ext: CLI reference, model table, config keys, figure scraper
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "tutorial/GALLERY_HEADER.rst",
    "tutorials/*.py",
    "tutorials/*.ipynb",
    "tutorials/*.zip",
    "tutorials/*.md5",
    "tutorials/*.json",
    "**/*.codeobj.json",
]
templates_path = ["_templates"]

# ---- MyST -------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# ---- API reference ----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc type lines say it, with shapes and units
autodoc_member_order = "bysource"
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# ---- tutorials (executed at build time) --------------------------------------------------------
from surveynet_docs import reset_argv, surveynet_scraper  # noqa: E402

sphinx_gallery_conf = {
    "examples_dirs": ["tutorial"],
    "gallery_dirs": ["tutorials"],
    "filename_pattern": r"_tutorial\.py$",  # execute every tutorial
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,  # a failing tutorial fails the build
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib", surveynet_scraper),
    "reset_argv": reset_argv,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "plot_gallery": "True",
    "capture_repr": (),
    "first_notebook_cell": None,
    "reference_url": {},
    "backreferences_dir": None,
    "write_computation_times": True,
}

# ---- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"surveynet {release}"
html_static_path: list[str] = []  # no local CSS or images
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "icon_links": [],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False

# Offline build: no intersphinx, no remote images.
nitpicky = False
suppress_warnings = [
    "config.cache",  # sphinx-gallery's callables in the config cannot be pickled
]
