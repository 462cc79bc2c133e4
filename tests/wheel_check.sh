#!/usr/bin/env bash
# A normal install works (issue 11): build the wheel, install it (not editable) in a fresh venv,
# and from a folder outside the repository run `recipes`, `plan`, `teach --help` and a 2-step
# `teach` of the tiny teacher. Exits non-zero on the first failure (e.g. no shipped recipes).
#
#     tests/wheel_check.sh            # or: make test-wheel; PY=python3.12 tests/wheel_check.sh
#
# Needs network or a pip cache for the dependencies; no GPU. KEEP=1 keeps the temp folder.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/distill-rvc-wheel.XXXXXX")
start=$SECONDS
step() { printf 'wheel check [%4ds] %s\n' $((SECONDS - start)) "$*"; }
cleanup() { rm -rf "$WORK"; step "removed $WORK"; }
if [ "${KEEP:-0}" = 1 ]; then echo "wheel check: keeping $WORK"; else trap cleanup EXIT; fi
unset PYTHONPATH  # the installed wheel, never the checkout, must answer
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }

# Build from a clean copy of the checkout's files (tracked + untracked, not ignored), so a stale
# build/ or egg-info in the checkout can neither add files to the wheel nor hide missing ones.
step "building the wheel"
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
else
    cp -a "$REPO/." "$WORK/src"
fi
"$PY" -m pip wheel --no-deps -q -w "$WORK/dist" "$WORK/src"
wheel=$(ls "$WORK"/dist/distill_rvc-*.whl)
mapfile -t expected < <(cd "$REPO/distill_rvc/recipes" && ls -- *.toml | sed 's/\.toml$//')
[ "${#expected[@]}" -gt 0 ] || fail "no recipes in $REPO/distill_rvc/recipes"
"$PY" - "$wheel" "${expected[@]}" <<'EOF' || fail "the wheel lacks shipped recipes"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in sys.argv[2:] if f"distill_rvc/recipes/{n}.toml" not in names]
print(f"  {sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files" + (f"; MISSING recipes: {missing}" if missing else ""))
sys.exit(1 if missing else 0)
EOF

step "fresh venv: torch==2.13.0, then the wheel"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
# --no-compile: byte-compiling all of torch costs a minute of CPU; imports compile what they use
"$VPY" -m pip install -q --no-compile torch==2.13.0
"$VPY" -m pip install -q --no-compile "$wheel"
export PATH="$WORK/venv/bin:$PATH"

# Everything below runs outside the checkout, against the installed package.
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
where=$("$VPY" -c "import distill_rvc, pathlib; print(pathlib.Path(distill_rvc.__file__).resolve().parent)")
case "$where" in "$WORK/venv/"*) ;; *) fail "distill_rvc imports from $where, not the venv";; esac

step "distill-rvc recipes"
distill-rvc recipes | tee recipes.txt
for name in "${expected[@]}"; do
    grep -qE "^$name[[:space:]]" recipes.txt || fail "distill-rvc recipes does not list the shipped recipe $name"
done

step "distill-rvc plan --recipe 4gb"
distill-rvc plan --recipe 4gb | tee plan.txt
grep -q "recipe 4gb:" plan.txt || fail "plan printed no plan for 4gb"
grep -q "= planned peak" plan.txt || fail "plan printed no planned peak"

step "distill-rvc teach --help"
distill-rvc teach --help > teach_help.txt
grep -q -- "--recipe" teach_help.txt || fail "teach --help lacks --recipe"

step "the example dataset"
"$VPY" "$REPO/examples/make_example_dataset.py" "$WORK/data" --clips "$WORK/clips" --utterances 6

step "distill-rvc teach: the tiny teacher, recipe tiny, 2 steps"
distill-rvc teach --teacher "$REPO/examples/tiny_teacher.pth" --recipe tiny --data "$WORK/data" \
    --out "$WORK/run" --steps 2 --batch-size 2 --device cpu --quiet
mapfile -t models < <(find "$WORK/run" -maxdepth 1 -name '*.pth')
[ "${#models[@]}" -gt 0 ] || fail "teach wrote no .pth in $WORK/run"
distill-rvc inspect "${models[0]}" > inspect.txt || fail "inspect cannot read ${models[0]}"
echo "  wrote ${models[*]##*/}"

step "passed: a normal install works"
