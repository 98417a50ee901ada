#!/usr/bin/env bash
# Wheels for a CUDA node that has no package index (an offline cluster node, or the lent GPU machine): everything
# creativity_llm[gpu] needs that the node lacks, at the versions installed in this checkout's .venv, for the node's Python.
# DeepSpeed is an sdist on the index, so its wheel is built here (pure Python: its CUDA ops are compiled on first use).
#
#   bash jobs/gpu_wheels.sh [--out DIR] [--have FILE] [--force NAME[,NAME]] [--python-version 3.12] [--with-dev] [--with-unidic]
#
#   --out DIR          where the wheels go (default wheels/; emptied first)
#   --have FILE        the node's packages, one per line as `pip list --format=freeze` prints them (NAME==VERSION; a NAME alone
#                      counts as present at a version that will do); a package the node has at a version our requirements
#                      accept is left out. Without it only torch and the CUDA stack (triton, nvidia-*) count as present.
#   --force LIST       bundle these even if the node has them (a version the file does not say, and that may be too old)
#   --python-version   the node's Python, for the binary wheels (default 3.12)
#   --with-dev         add what the notebook tests need (nbdev, execnb)
#   --with-unidic      add unidic-lite (47 MB): fugashi's dictionary, which only Japanese scoring loads
#
# On the node: pip install --no-index --no-deps --target DIR wheels/*.whl and put DIR on PYTHONPATH (bench/gpu.sh --wheels
# does this), or pip install --no-index --find-links wheels -e . in a virtual environment that has torch.
set -euo pipefail
cd "$(dirname "$0")/.."

out=wheels; have=""; force=""; pyver=3.12; dev=""; unidic=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift ;;
        --have) have=$2; shift ;;
        --force) force=$2; shift ;;
        --python-version) pyver=$2; shift ;;
        --with-dev) dev=1 ;;
        --with-unidic) unidic=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu_wheels.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
python=.venv/bin/python
[ -x "$python" ] || { echo "gpu_wheels.sh: no .venv here: run make venv first (the versions come from it)" >&2; exit 1; }
[ -z "$have" ] || [ -f "$have" ] || { echo "gpu_wheels.sh: --have $have: no such file" >&2; exit 1; }

# The requirement closure of creativity_llm[gpu] (plus the dev tools asked for), markers evaluated for the node's Python on
# Linux x86-64, each pinned to the version installed here; what the node already has at an accepted version is dropped.
wanted=$("$python" - "$pyver" "$have" "$force" "$dev" "$unidic" <<'EOF'
import re, sys, tomllib
from importlib.metadata import PackageNotFoundError, distribution
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name as canon
from packaging.version import Version

pyver, have_file, force, dev, unidic = sys.argv[1:]
env = {"python_version": pyver, "python_full_version": pyver + ".0", "sys_platform": "linux", "platform_system": "Linux",
       "platform_machine": "x86_64", "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}
cuda_stack = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
have = {}
for line in open(have_file).read().splitlines() if have_file else []:
    line = line.split("#")[0].strip()
    if line: name, _, version = line.partition("=="); have[canon(name)] = version.strip() or None
forced = {canon(x) for x in force.split(",") if x}
project = tomllib.load(open("pyproject.toml", "rb"))["project"]  # our own requirements as written (an editable install's metadata can lag)
ours = project["dependencies"] + project["optional-dependencies"]["gpu"] + (["nbdev", "execnb"] if dev else [])
specs, pins, queue, seen = {}, {}, [], set()
def require(texts, extras):
    for text in texts:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})): continue
        specs.setdefault(canon(req.name), SpecifierSet())
        specs[canon(req.name)] &= req.specifier
        queue.append((req.name, set(req.extras)))
require(ours, set())
while queue:
    name, extras = queue.pop()
    key = (canon(name), frozenset(extras))
    if key in seen: continue
    seen.add(key)
    try: dist = distribution(name)
    except PackageNotFoundError: pins.setdefault(canon(name), None); continue  # needed on the node's Python only
    pins[canon(name)] = dist.version
    require(dist.requires or [], extras)
pins.pop("creativity-llm", None)
if not unidic: pins.pop("unidic-lite", None)
for name, version in sorted(pins.items()):
    if cuda_stack.match(name) and name not in forced: continue
    if name in have and name not in forced:
        node = have[name]
        if node is None or Version(node) in specs.get(name, SpecifierSet()): continue
    print(f"{name}=={version}" if version else name)
EOF
)
[ -n "$wanted" ] || { echo "gpu_wheels.sh: the node has everything"; exit 0; }
rm -rf "$out"; mkdir -p "$out"
platforms=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_26_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 linux_x86_64 any; do
    platforms+=(--platform "$p")
done
abi="cp${pyver/./}"
built=()
for spec in $wanted; do
    if "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp --abi "$abi" --abi abi3 --abi none \
        "${platforms[@]}" -d "$out" "$spec" 2>/dev/null; then continue; fi
    # no wheel on the index (DeepSpeed): build one here, with this venv's torch, and refuse it unless it is pure Python
    "$python" -m pip wheel -q --no-deps --no-build-isolation -w "$out" "$spec" >/dev/null
    built+=("$spec")
done
for f in "$out"/*.whl; do
    case "$f" in *-none-any.whl|*-"$abi"-*.whl|*-abi3-*.whl) ;; *) echo "gpu_wheels.sh: $f is not for Python $pyver" >&2; exit 1 ;; esac
done
count=$(find "$out" -name '*.whl' | wc -l)
size=$(du -sm "$out" | cut -f1)
echo "$count wheels in $out, ${size} MiB ($(du -sb "$out" | cut -f1) bytes)${built:+; built here: ${built[*]}}"
