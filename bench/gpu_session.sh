#!/usr/bin/env bash
# Every GPU check of #26 in one prepared call, for a session lent a GPU machine (~15 minutes of device
# time in all; see bench/RESULTS.md, "gpu"). That machine lacks some of our Python packages and cannot
# reach pip's registry: their wheels are fetched here first into the git-ignored .whl/ folder.
#
#   here:         bash bench/gpu_session.sh fetch
#   there:        bash bench/gpu_session.sh run            (the device tool's `run`, carry [".whl"])
#   a dry run:    OUT=/tmp/out bash bench/gpu_session.sh run --small --batch 32 --steps 3 --jpegs 300
#
# `run` writes $OUT/gpu.json (bench/gpu.py's JSON line), $OUT/gpu.log (its progress, a case per line,
# kept even if the call is stopped at its limit) and $OUT/env.txt (the GPU, driver and versions).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"  # the GPU machine's; the CPU test passes its own interpreter
# vit first (the figure every other is read against); beit last: it trains its tokenizer first and
# the budget leaves it out if late. --sync-debug lists where each run waited for the GPU, by CUDA's count.
CASES=(vit mae vit_files vit_files_device vit_compile beit)
case "${1:-}" in
    fetch)
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
            timm==1.0.31 SQLAlchemy==2.1.9 alembic==1.20.1 Mako==1.4.3 platformdirs==4.14.8
        ls .whl
        ;;
    run)
        shift
        : "${OUT:?OUT: the folder the results go to (the device tool sets it)}"
        mkdir -p "$OUT"
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
        # the GPU machine's image lacks these; a machine set up here (pip install -e .) has them
        if ! "$PYTHON" -c "import sqlalchemy, alembic, mako, platformdirs, timm" 2>/dev/null; then
            if ! compgen -G ".whl/*.whl" >/dev/null; then
                echo "no wheels in .whl/: run 'bash bench/gpu_session.sh fetch' here, and carry .whl" >&2
                exit 1
            fi
            "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
            export PYTHONPATH="/tmp/site:$PYTHONPATH"
        fi
        { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
          "$PYTHON" -c "import torch, timm, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, timm.__version__)" || true
        } > "$OUT/env.txt" 2>&1
        cat "$OUT/env.txt"
        "$PYTHON" bench/gpu.py --cases "${CASES[@]}" --sync-debug --budget-s "${BUDGET_S:-420}" --out "$OUT/gpu.json" "$@" \
            2>&1 | tee "$OUT/gpu.log"
        ;;
    *)
        echo "usage: bash bench/gpu_session.sh fetch | run [bench/gpu.py options]" >&2
        exit 2
        ;;
esac
