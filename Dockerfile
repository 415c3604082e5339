# syntax=docker/dockerfile:1
#
# Doorstep server image.
#
#   docker build -t doorstep .
#   docker run -p 8080:8080 -p 11112:11112 -v doorstep-data:/var/lib/doorstep doorstep
#
# Stage 1 builds the doorstep wheel (which carries web/ and migrations/ as package
# data, see [tool.hatch.build.targets.wheel.force-include] in pyproject.toml) and
# the wheels of every dependency. Stage 2 installs only those wheels, offline,
# into a virtualenv and runs as an unprivileged user. No compiler, no pip cache
# and no source tree end up in the final image.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Only what the wheel is built from (README.md is the package's readme).
COPY pyproject.toml README.md ./
COPY server/ server/
COPY dicom_tools/ dicom_tools/
COPY web/ web/
COPY migrations/ migrations/

# The doorstep wheel plus a wheel for every dependency, into /wheels.
RUN pip wheel --wheel-dir /wheels .

# Fail the build when the wheel lacks its package data.
RUN python -c "import glob, sys, zipfile; (wheel,) = glob.glob('/wheels/doorstep-*.whl'); \
names = set(zipfile.ZipFile(wheel).namelist()); \
missing = sorted({'server/_web/templates/base.html', 'server/_web/locale/zh_Hans/LC_MESSAGES/common.po', 'server/_migrations/env.py'} - names); \
sys.exit(f'{wheel} lacks {missing}') if missing else print(wheel, 'carries web/ and migrations/')"

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="Doorstep" \
      org.opencontainers.image.description="Telemedicine for primary-care networks" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/doorstep/bin:$PATH \
    DOORSTEP_DATA_DIR=/var/lib/doorstep

# Fonts for signed report PDFs: DejaVu (Latin, Greek, Cyrillic) and WenQuanYi Zen Hei
# (Chinese, Japanese, Korean), embedded as subsets so a report reads the same everywhere.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-wqy-zenhei \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user; the data directory is its only writable place.
RUN groupadd --system --gid 10001 doorstep \
 && useradd --system --uid 10001 --gid doorstep --home-dir /var/lib/doorstep \
            --no-create-home --shell /usr/sbin/nologin doorstep \
 && mkdir -p /var/lib/doorstep \
 && chown doorstep:doorstep /var/lib/doorstep \
 && chmod 0750 /var/lib/doorstep

# Install from the builder's wheels only (no index): what was built is what runs.
# pip byte-compiles while installing, since the doorstep user cannot write there.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/doorstep \
 && /opt/doorstep/bin/pip install --no-index --find-links=/wheels --compile doorstep \
 && /opt/doorstep/bin/doorstep --help >/dev/null

ENV PYTHONDONTWRITEBYTECODE=1

WORKDIR /var/lib/doorstep
USER doorstep:doorstep
VOLUME ["/var/lib/doorstep"]

# 8080: HTTP (or HTTPS with DOORSTEP_TLS_CERT/DOORSTEP_TLS_KEY); 11112: DICOM DIMSE.
EXPOSE 8080 11112

# The slim image has no curl: ask /healthz with the standard library. The port
# follows DOORSTEP_PORT and the scheme follows DOORSTEP_TLS_CERT (the
# certificate is not checked: this only asks whether the process answers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('DOORSTEP_TLS_CERT')); url = ('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('DOORSTEP_PORT', '8080') + '/healthz'; urllib.request.urlopen(url, timeout=4, context=ssl._create_unverified_context() if tls else None)"]

# aiohttp stops gracefully on SIGTERM (10 s shutdown timeout).
STOPSIGNAL SIGTERM
CMD ["doorstep", "serve", "--host", "0.0.0.0"]
