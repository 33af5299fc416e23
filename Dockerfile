# The one kubeforge image: every component runs in it (tag = package version).
#
#   scripts/build_images.sh                      CPU torch (default)
#   scripts/build_images.sh --variant cuda       CUDA torch
#
# BASE_IMAGE must provide python3 (3.11) with venv and pip, e.g. python:3.11-slim.
ARG BASE_IMAGE=python:3.11-slim
ARG EXTRAS=aws,gcp,kubernetes,postgres,tracking,explain

# The runtime requirements (dependencies plus EXTRAS) listed from pyproject.toml.
FROM ${BASE_IMAGE} AS requirements
ARG EXTRAS
COPY pyproject.toml /pyproject.toml
RUN python3 -c "import sys, tomllib; project = tomllib.load(open('/pyproject.toml', 'rb'))['project']; \
      extras = [req for name in sys.argv[1].split(',') for req in project['optional-dependencies'][name]]; \
      print(*project['dependencies'], *extras, sep=chr(10))" "${EXTRAS}" >/requirements.txt

FROM ${BASE_IMAGE} AS build
# cpu: the CPU-only wheel; cuda: the CUDA 12.6 wheel. TORCH_INDEX_URL overrides where it comes from.
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=""
# Optional folder of wheels pip looks in first (build_images.sh --wheels mounts it at /wheels).
ARG PIP_FIND_LINKS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/kubeforge
RUN case "${TORCH_VARIANT}" in \
      cpu) index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" ;; \
      cuda) index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu126}" ;; \
      *) echo "TORCH_VARIANT must be cpu or cuda, not ${TORCH_VARIANT}" >&2; exit 2 ;; \
    esac \
 && /opt/kubeforge/bin/pip install --extra-index-url "${index}" "torch==${TORCH_VERSION}"
# The dependencies first, from the requirement list alone (extracted in its own stage), so that neither a
# source change nor a pyproject.toml change outside the dependencies reinstalls them.
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN /opt/kubeforge/bin/pip install -r /tmp/requirements.txt
COPY pyproject.toml setup.py README.md /src/
COPY src /src/src
COPY components /src/components
COPY pipelines /src/pipelines
ARG EXTRAS
RUN /opt/kubeforge/bin/pip install "/src[${EXTRAS}]" && rm -rf /src

FROM ${BASE_IMAGE} AS runtime
ARG KUBEFORGE_VERSION=unknown
LABEL org.opencontainers.image.title="kubeforge" \
      org.opencontainers.image.version="${KUBEFORGE_VERSION}" \
      org.opencontainers.image.source="https://github.com/kubeforge/kubeforge"
# UID/GID 10001: the Helm chart's runAsUser/runAsGroup/fsGroup name the same ids (a high UID that
# no host account shares).
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin kubeforge
COPY --from=build /opt/kubeforge /opt/kubeforge
# KFP runs components as `python3 -m kfp.dsl.executor_main ...`: the venv's python3 comes first.
ENV PATH=/opt/kubeforge/bin:${PATH} PYTHONUNBUFFERED=1 HOME=/home/kubeforge
USER 10001:10001
WORKDIR /home/kubeforge
RUN python3 -c "import kubeforge, torch, kfp; print('kubeforge', kubeforge.__version__, 'torch', torch.__version__)"
