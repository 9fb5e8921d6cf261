#!/usr/bin/env bash
# The GPU check: everything gan_je needs a GPU for, in one run of at most --budget seconds
# (default 480) on one GPU, written up as a Markdown report. The steps, in order of value:
#   1. the CUDA tests (pytest -m cuda);
#   2. the exact k-NN search: entropy and JSD, "auto" against "triton", N = 50,000 and
#      1,000,000, d = 64, at proposal precisions highest and tf32 (and bf16 at 50,000), with
#      time and peak memory (benchmarks/estimators.py gpu);
#   3. training throughput, the 2016 DCGAN: GANModule against a plain PyTorch loop in fp32,
#      16-mixed and bf16-mixed (benchmarks/train.py precision);
#   4. make train's experiment with trainer=gpu: wall time and final val/jsd;
#   5. the stacked-MNIST benchmark: plain, entropy matching and PacGAN4 with a 1/4-size
#      discriminator, 10,153 generator steps each (benchmarks/stacked_mnist.py gpu).
# Each step runs under `timeout` with the time left; once none is left the rest are
# skipped. A failing step is recorded and the next ones still run; the exit status is 1 if
# any step failed or timed out.
#
#   bash benchmarks/gpu.sh [--budget SECONDS] [--report PATH] [--python PATH] [--dry-run]
#
#   --report   default benchmarks/results/gpu-report.md
#   --python   default .venv/bin/python if it exists, else python3
#   --dry-run  every step on the CPU at tiny sizes (about 25 s on 2 idle cores), so that CI
#              keeps this script working; the CUDA tests report their skips
set -euo pipefail

invocation="bash benchmarks/gpu.sh${*:+ $(printf '%q ' "$@")}"
budget=480
report=benchmarks/results/gpu-report.md
python=
dry_run=false
while (($#)); do
    case $1 in
        --budget) budget=${2:?--budget needs a number of seconds}; shift 2 ;;
        --report) report=${2:?--report needs a path}; shift 2 ;;
        --python) python=${2:?--python needs a path}; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu.sh: unknown option '$1'; see bash benchmarks/gpu.sh --help" >&2; exit 2 ;;
    esac
done
if ! [[ $budget =~ ^[0-9]+$ ]] || ((budget == 0)); then
    echo "gpu.sh: --budget must be a positive whole number of seconds, got '$budget'" >&2
    exit 2
fi
# paths given from the caller's directory, then work from the repository root
report=$(realpath -m "$report")
[[ $python == */* ]] && python=$(realpath -m "$python")
cd "$(dirname "$0")/.."
if [[ -z $python ]]; then
    python=python3
    [[ -x .venv/bin/python ]] && python=.venv/bin/python
fi
export PYTHONUNBUFFERED=1 # a step cut short by its timeout keeps what it printed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$report")"
start=$SECONDS
number=0
failed=()

note() { printf '%s\n' "$@" >>"$report"; }

# step TITLE COMMAND...: a report section for COMMAND, run under the time left. Returns 1
# when skipped; otherwise 0 whatever its exit status, with its output in $work/out and err.
step() {
    local title=$1 left=$((budget - (SECONDS - start))) began=$SECONDS command status rc=0
    shift
    number=$((number + 1))
    command=$(printf '%q ' "$@")
    note "" "## $number. $title" "" '```bash' "${command% }" '```' ""
    if ((left <= 0)); then
        note "skipped: out of time"
        return 1
    fi
    echo "gpu.sh: step $number, $title ($left s left)" >&2
    timeout --kill-after=10 "$left" "$@" >"$work/out" 2>"$work/err" || rc=$?
    case $rc in
        0) status="passed" ;;
        124 | 137) status="timed out" ;;
        *) status="failed (exit status $rc)" ;;
    esac
    note "**$status** in $((SECONDS - began)) s" ""
    if ((rc != 0)); then
        failed+=("$number")
        note "Last lines of its error output:" "" '```text' "$(tail -n 30 "$work/err")" '```' ""
    fi
}

text_output() { note '```text' "$(tail -n 40 "$work/out")" '```'; }
markdown_output() { note "$(sed "s/^## /### /" "$work/out")"; } # its headings below the step's

# what ran where
if $dry_run; then
    mode="dry run: every step on the CPU at tiny sizes; no figure here is a measurement"
    dry=(--dry-run)
    train_sizes=(trainer.accelerator=cpu trainer.max_epochs=1 trainer.limit_train_batches=3
        trainer.limit_val_batches=2)
else
    mode="full run"
    dry=()
    train_sizes=()
fi
device=$("$python" -c '
import os, platform, torch
if torch.cuda.is_available():
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"{torch.cuda.get_device_name()} ({gib:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}")
else:
    print(f"no CUDA device ({platform.machine()}, {os.cpu_count()} CPUs), torch {torch.__version__}")
' 2>/dev/null) || device="unknown ($python could not import torch)"
smi=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null) ||
    smi="not available"
commit=$(git rev-parse --short HEAD 2>/dev/null) || commit="unknown (not a git checkout)"
if [[ $commit != unknown* ]] && [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    commit+=" with uncommitted changes"
fi
: >"$report"
note "# GPU check" "" \
    "- device: $device" \
    "- nvidia-smi: $smi" \
    "- date: $(date -u '+%Y-%m-%d %H:%M UTC')" \
    "- commit: $commit" \
    "- mode: $mode" \
    "- budget: $budget s" \
    "- command: \`${invocation% }\`"

if step "CUDA tests" "$python" -m pytest -m cuda -q -p no:cacheprovider; then
    text_output
fi

if step "exact k-NN search on the GPU" "$python" benchmarks/estimators.py "${dry[@]}" gpu; then
    markdown_output
fi

if step "training throughput by precision" "$python" benchmarks/train.py "${dry[@]}" precision; then
    markdown_output
fi

run_dir=$work/train
if step "make train's experiment on the GPU" "$python" -m gan_je.train trainer=gpu logger=none \
    "${train_sizes[@]}" "hydra.run.dir=$run_dir"; then
    if [[ -f $run_dir/summary.json ]]; then
        if ! "$python" - "$run_dir/summary.json" >>"$report" <<'EOF'
import json, sys
from gan_je.tables import markdown_table
summary = json.load(open(sys.argv[1]))
header = ["status", "generator steps", "validations", "wall time (s)", "final val/jsd"]
row = [summary["status"], summary["g_steps"], summary["validations"],
       summary["wall_time_s"], summary["final"].get("val/jsd")]
print(markdown_table(header, [row]))
print("\nFrom the run's summary.json; the wall time counts training and validation, not start-up.")
EOF
        then
            note "Its summary.json could not be read."
        fi
    else
        note "The run wrote no summary.json."
    fi
fi

# its runs are recorded as they end (next to the report), so a rerun after a time-out
# continues with the runs not yet done
records=$work/stacked_mnist.jsonl
$dry_run || records=${report%.md}-stacked_mnist.jsonl
if step "experiment=stacked_mnist benchmark" "$python" benchmarks/stacked_mnist.py "${dry[@]}" \
    --records "$records" gpu; then
    markdown_output
    $dry_run || note "" "Each run's record: $records"
fi

note "" "---" "" "Total: $((SECONDS - start)) s of the $budget s budget."
if ((${#failed[@]})); then
    note "Steps that failed or timed out: ${failed[*]}."
    echo "gpu.sh: steps ${failed[*]} failed or timed out; report: $report" >&2
    exit 1
fi
echo "gpu.sh: report: $report" >&2
