#!/usr/bin/env bash
# EMR bootstrap action for the prox-spark refine job (docs/deployment.md, "Amazon EMR"). Runs on every node
# as the cluster starts, before Spark and YARN, and prepares what the job's Python needs on each node:
#
#   1. a Python 3.11 virtualenv at /opt/prox/venv with the prox-spark wheel and its dependencies
#      (the job's spark-submit points spark.pyspark.python at it; the step's --py-files wheel shadows the
#      installed copy, so new code needs no new cluster, only new dependencies do);
#   2. onnxruntime-gpu on nodes with an NVIDIA GPU, onnxruntime (CPU) elsewhere - never both: they write the
#      same onnxruntime/ package and the CPU build would win silently; and the WARC reader's libraries (the
#      wheel's `warc` extra: resiliparse, fastwarc), since conf/emr.yaml reads `format: auto` crawl folders that
#      may hold .warc(.gz) files (a cluster that never reads WARC can leave them out);
#   3. the exported models copied to local disk (/mnt/prox/models): the model loader reads local files;
#   4. the input bucket mounted read-only with Mountpoint for Amazon S3 at /mnt/s3/<bucket>: the input reader
#      opens files with plain Python, so it needs a FUSE path, not s3:// URIs (file inputs only: a Delta
#      input table is read by Spark from s3:// directly; then leave the third argument out).
#
# Bootstrap action arguments (all optional except the first):
#   $1  s3:// prefix holding the wheel            (e.g. s3://my-bucket/prox/artifacts)
#   $2  s3:// prefix holding the exported models  (default: <$1>/../models)
#   $3  input bucket to mount                     (default: none)
#
# Spark itself, Delta (/usr/share/aws/delta/lib/) and the AWS CLI come with the EMR release: use EMR 7.x, the newest
# you can (Spark 3.5 + its Delta 3.x; no EMR release ships Spark 4.0). The job's end-to-end tests run on that line
# with Spark 3.5.5 + Delta 3.3.2 (constraints-spark35.txt, `make test-spark35`). Nothing here installs pyspark or
# delta-spark: the wheel's base dependencies leave both to the cluster.
set -euo pipefail

ARTIFACTS="${1:?usage: emr_bootstrap.sh s3://bucket/prox/artifacts [s3://bucket/prox/models] [input-bucket]}"
MODELS="${2:-${ARTIFACTS%/*}/models}"
INPUT_BUCKET="${3:-}"
WHEEL_NAME="prox_spark-0.1.0-py3-none-any.whl"
ORT_GPU="onnxruntime-gpu==1.31.1"
ORT_CPU="onnxruntime==1.32.0"
TOKENIZERS="tokenizers==0.22.2"
RESILIPARSE="resiliparse==2.0.0"
FASTWARC="fastwarc==2.0.0"
VENV=/opt/prox/venv

log() { echo "prox-bootstrap: $*" >&2; }

# 1. Python 3.11 + the wheel and its dependencies (the wheel needs Python >= 3.10; EMR's default python3 may be older)
if ! command -v python3.11 >/dev/null; then
  sudo dnf install -y python3.11 python3.11-pip >/dev/null
fi
sudo mkdir -p /opt/prox /mnt/prox/models
sudo chown -R "$(id -u):$(id -g)" /opt/prox /mnt/prox
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
aws s3 cp "$ARTIFACTS/$WHEEL_NAME" "/opt/prox/$WHEEL_NAME"

# 2. exactly one onnxruntime build, and the WARC libraries
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  log "GPU node: $(nvidia-smi -L | head -1); installing $ORT_GPU"
  "$VENV/bin/pip" install -q "/opt/prox/$WHEEL_NAME" "$ORT_GPU" "$TOKENIZERS" "$RESILIPARSE" "$FASTWARC"
else
  log "CPU node: installing $ORT_CPU"
  "$VENV/bin/pip" install -q "/opt/prox/$WHEEL_NAME" "$ORT_CPU" "$TOKENIZERS" "$RESILIPARSE" "$FASTWARC"
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
builds = [d for d in ("onnxruntime", "onnxruntime-gpu") if any(x.metadata["Name"] == d for x in m.distributions())]
assert len(builds) == 1, f"exactly one onnxruntime build must be installed, found {builds}"
import onnxruntime, prox_spark, fastwarc, resiliparse  # noqa: F401  (the job's imports resolve, WARC input included)
print(f"prox-bootstrap: {builds[0]} {onnxruntime.__version__}, providers {onnxruntime.get_available_providers()}")
PY
# (get_available_providers lists CUDA whenever onnxruntime-gpu is installed; whether CUDA really runs shows in
#  the executor logs: "onnxruntime runs on CUDAExecutionProvider". provider: cuda in the config fails otherwise.)

# 3. models on local disk (each directory's prox_model.json lists sha256 of every file; the job checks them)
aws s3 sync --only-show-errors "$MODELS/" /mnt/prox/models/
log "models: $(ls /mnt/prox/models | tr '\n' ' ')"

# 4. the input bucket as a read-only FUSE mount
if [ -n "$INPUT_BUCKET" ]; then
  if ! command -v mount-s3 >/dev/null; then
    arch="$(uname -m)"; [ "$arch" = "aarch64" ] && arch=arm64 || arch=x86_64
    curl -fsSL -o /tmp/mount-s3.rpm "https://s3.amazonaws.com/mountpoint-s3-release/latest/$arch/mount-s3.rpm"
    sudo dnf install -y /tmp/mount-s3.rpm >/dev/null
  fi
  # executors run as another user (yarn) than this script (hadoop): let them read the mount
  grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null || echo user_allow_other | sudo tee -a /etc/fuse.conf >/dev/null
  sudo mkdir -p "/mnt/s3/$INPUT_BUCKET"
  sudo chown "$(id -u):$(id -g)" "/mnt/s3/$INPUT_BUCKET"
  mount-s3 --read-only --allow-other "$INPUT_BUCKET" "/mnt/s3/$INPUT_BUCKET"
  log "mounted s3://$INPUT_BUCKET at /mnt/s3/$INPUT_BUCKET"
fi
log "done"
