# syntax=docker/dockerfile:1
#
# dressmatch service image, two targets:
#
#   docker build -t dressmatch:gpu .                 # production, GPU: @tensorflow/tfjs-node-gpu on CUDA (default)
#   docker build --target cpu -t dressmatch:cpu .    # CPU: @tensorflow/tfjs-node, falling back to the wasm backend
#
#   docker run --gpus all -p 8080:8080 -v /srv/dressmatch:/data dressmatch:gpu
#
# The container runs `dressmatch serve` on 0.0.0.0:8080 over /data/indexes/demo with the model
# /data/models/demo/model_best.dmck and product images under /data/catalogue (override with arguments, e.g.
# `docker run ... dressmatch:gpu serve --index /data/indexes/shop --model /data/models/shop/model_best.dmck`).
# A newly published index version under /data is picked up without a restart.
#
# NOT BUILDABLE ON THE DEVELOPMENT MACHINES OR IN CI: they have no Docker engine, and installing
# @tensorflow/tfjs-node(-gpu) downloads libtensorflow from storage.googleapis.com during `npm install`, which their
# network does not allow. Build it on a machine with Docker and internet access.
#
# tfjs-node(-gpu) 4.22 links libtensorflow 2.9 (built for CUDA 11.2 and cuDNN 8); the CUDA 11.8 runtime with
# cuDNN 8 provides the same sonames (libcudart.so.11.0, libcublas.so.11, libcudnn.so.8). The host needs an NVIDIA
# driver recent enough for CUDA 11.8 and the NVIDIA container toolkit (`--gpus all`).

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04
ARG TFJS_VERSION=4.22.0

FROM ${NODE_IMAGE} AS node

# ------------------------------------------------------------------------------------------------ shared pieces
# Dependencies are installed on the same base image as the final stage, so native modules (hnswlib-node, sharp,
# the TensorFlow binding) are built against the C library they will run with.
FROM ${NODE_IMAGE} AS cpu-base
RUN useradd --system --uid 10001 --home-dir /app dressmatch

FROM ${CUDA_IMAGE} AS gpu-base
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && useradd --system --uid 10001 --home-dir /app dressmatch

# ------------------------------------------------------------------------------------------------ CPU variant
FROM cpu-base AS cpu-deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
ARG TFJS_VERSION
# Production dependencies, plus tsx (the service runs its TypeScript sources directly, as in development) and the
# native TensorFlow binding that the backend selection prefers over wasm when it is installed.
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm install --omit=dev --no-save --no-audit --no-fund "tsx@^4" "@tensorflow/tfjs-node@${TFJS_VERSION}"

FROM cpu-base AS cpu
ENV NODE_ENV=production \
    DRESSMATCH_BACKEND=auto
WORKDIR /app
COPY --from=cpu-deps /app/node_modules ./node_modules
COPY package.json tsconfig.json openapi.yaml ./
COPY src ./src
USER dressmatch
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--import", "tsx", "src/cli/main.ts"]
CMD ["serve", "--index", "/data/indexes/demo", "--model", "/data/models/demo/model_best.dmck", \
     "--images", "/data/catalogue", "--host", "0.0.0.0", "--port", "8080"]

# ------------------------------------------------------------------------------------------------ GPU (default)
FROM gpu-base AS gpu-deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
ARG TFJS_VERSION
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm install --omit=dev --no-save --no-audit --no-fund "tsx@^4" "@tensorflow/tfjs-node-gpu@${TFJS_VERSION}"

FROM gpu-base AS gpu
# DRESSMATCH_BACKEND=tensorflow: refuse to start on a silent CPU fallback when the GPU binding does not load.
ENV NODE_ENV=production \
    DRESSMATCH_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=1
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY package.json tsconfig.json openapi.yaml ./
COPY src ./src
USER dressmatch
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--import", "tsx", "src/cli/main.ts"]
CMD ["serve", "--index", "/data/indexes/demo", "--model", "/data/models/demo/model_best.dmck", \
     "--images", "/data/catalogue", "--host", "0.0.0.0", "--port", "8080"]
