#!/usr/bin/env bash
# The GPU checks of issue 13 in one go, for a session lent a GPU machine:
#   1. the tests marked `gpu`;
#   2. benchmarks/speed.py --device cuda --precision bf16 for every model (samples/s, share of the
#      bf16 matmul peak measured in the same run), and InceptionFormer in fp32 for comparison;
#   3. benchmarks/data_speed.py with 0, 4 and 8 DataLoader workers (windows/s).
# Everything goes to OUT (default: gpu_check/), one file per step, with the card and versions.
#
#   bash benchmarks/gpu_check.sh [OUT]
#
# data_speed needs PTB-XL under $ECGLAB_DATA (default ./data, git-ignored): copy the shared 100 Hz
# subset there (ptbxl/records100/ and the two CSV files, about 56 MB) and name `data` in the device
# run's carry list. Without it, that step is skipped with a note. Each step has a time limit, so a
# hung step cannot eat the whole lease; the script goes on after a failed step and exits non-zero.
set -u
out=${1:-gpu_check}
mkdir -p "$out"
python=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export ECGLAB_DATA=${ECGLAB_DATA:-$PWD/data}
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, output to OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*" | tee "$out/$name.txt"
    local started=$SECONDS
    timeout "$limit" "$@" >>"$out/$name.txt" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$out/$name.txt"
    [ "$rc" -eq 0 ] || status=1
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
} >"$out/device.txt" 2>&1
cat "$out/device.txt"

step gpu_tests 240 "$python" -m pytest -q -m gpu -p no:cacheprovider tests
step speed_bf16 420 "$python" benchmarks/speed.py --device cuda --precision bf16 --batch 64 --steps 10 \
    --out "$out/speed_cuda_bf16.md"
step speed_fp32_inceptionformer 120 "$python" benchmarks/speed.py --device cuda --precision fp32 \
    --models inceptionformer,inceptionformer_shunted --batch 64 --steps 10 --out "$out/speed_cuda_fp32.md"
if [ -f "$ECGLAB_DATA/ptbxl/ptbxl_database.csv" ]; then
    step data_speed 300 "$python" benchmarks/data_speed.py --dataset ptbxl --fs 100 --windows 20000 \
        --workers 0,4,8
else
    echo "data_speed skipped: no PTB-XL under $ECGLAB_DATA" | tee "$out/data_speed.txt"
fi
exit $status
