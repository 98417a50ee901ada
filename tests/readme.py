"""README.md is the markdown of nbs/index.ipynb (nbdev-readme needs Quarto, which is not installable offline).

python tests/readme.py --check   exit 1 if README.md differs
python tests/readme.py --write   rewrite README.md
"""
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def render() -> str:
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    return "\n\n".join(c.source.strip() for c in nb.cells if c.cell_type == "markdown") + "\n"


if __name__ == "__main__":
    want, path = render(), ROOT / "README.md"
    if "--write" in sys.argv:
        path.write_text(want)
    elif not path.exists() or path.read_text() != want:
        sys.exit("README.md differs from nbs/index.ipynb: run `make readme` and commit")
