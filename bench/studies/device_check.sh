#!/usr/bin/env bash
# The GPU checks of maskbench in one prepared run (issue 14, item 4), for a lent CUDA machine that has
# torch but no copy of the model: real layers travel as instance files.
#
#   maskbench extract --nsamples 16 --seqlen 256 --crops 0 --out LAYERS \
#       --layers '*.3.self_attn.q_proj,*.10.self_attn.q_proj,*.10.mlp.down_proj'
#   python -m bench.studies.device_parity LAYERS/model.layers.*.safetensors --device cpu --rows 6 --out LAYERS/cpu_reference.json
#   bash bench/studies/device_check.sh LAYERS OUT            # on the GPU machine, from the repository root
#
# Each step has its own time limit so one slow step cannot eat the others; everything is logged
# under OUT. DEVICE=cpu runs the same steps on the CPU (a dry run of the script); ONLY="step …" picks steps.
set -u
layers=${1:?usage: bench/studies/device_check.sh LAYERS OUT}
out=${2:?usage: bench/studies/device_check.sh LAYERS OUT}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
files=$(ls -rS "$layers"/model.layers.*.safetensors)  # smallest first: a step cut by its limit keeps the most layers
instances=$(echo "$files" | paste -sd, -)
xdist=$("$py" -c "import xdist" 2>/dev/null && echo "-n $(nproc)")

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to OUT/NAME.log, say how it ended
    local name=$1 limit=$2
    shift 2
    [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]] && return  # ONLY="a b": run just those steps
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)"
    tail -n 25 "$out/$name.log"
}

step environment 30 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1; \
    $py -c 'import torch, transformers, sys; print(sys.version.split()[0], torch.__version__, transformers.__version__, \
    torch.cuda.is_available() and torch.cuda.get_device_name())'"
step pytest_cuda 90 "$py" -m pytest -q -p no:cacheprovider tests/solvers/test_cuda_parity.py tests/solvers/test_device.py
step swap_speed_real 100 "$py" -m bench.studies.swap_speed --device "$device" --instances "$instances"
# shellcheck disable=SC2086
step device_parity 150 "$py" -m bench.studies.device_parity $files --device "$device" --rows 6 \
    --reference "$layers/cpu_reference.json" --out "$out/parity_$device.json"
step swap_speed_synthetic 60 "$py" -m bench.studies.swap_speed --device "$device" --shapes 576x576,2048x2048
# the whole test suite on this machine (solvers default to CUDA where present); limit PYTEST_LIMIT seconds
# shellcheck disable=SC2086
step pytest_all "${PYTEST_LIMIT:-300}" "$py" -m pytest -q -rfE -p no:cacheprovider $xdist tests
