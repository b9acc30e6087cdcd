# syntax=docker/dockerfile:1
# Runtime image of an inspection station: ONNX Runtime, OpenCV, the shipped plugins, the
# records layer (SQLite / PostgreSQL) and MQTT. No torch: training stays on the workstation.
#
#   docker build -t inspect-station .
#   docker run -d --name line1 --restart unless-stopped \
#     -v "$PWD/station.toml:/station/station.toml:ro" \
#     -v "$PWD/inbox:/station/inbox" -v "$PWD/archive:/station/archive" \
#     -v "$PWD/quarantine:/station/quarantine" -v "$PWD/state:/station/state" \
#     inspect-station
#
# The container runs `inspect station run /station/station.toml`; paths in the config are
# relative to it (inbox, archive, quarantine, state). `docker stop` sends SIGTERM: the station
# finishes the images in hand, flushes and exits 0 (give it time: --stop-timeout 30).

FROM python:3.11-slim AS build
WORKDIR /src
# the workspace members a station runs: the core (this folder), the shipped plugins, the
# records layer and the station, each a distribution of its own (README "Layout")
COPY pyproject.toml README.md ./
COPY requirements/station.txt requirements/
COPY inspect_core/ inspect_core/
COPY plugins/ plugins/
COPY db/ db/
COPY stations/ stations/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . ./plugins ./db ./stations

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
COPY --from=build /src/requirements/station.txt /wheels/
# the runtime dependencies of pyproject (no torch) plus the postgres and mqtt extras, every
# version and hash from the lock (requirements/station.txt, `make lock`); the project without
# dependency resolution, so nothing unlocked comes in
RUN pip install --require-hashes --no-deps -r /wheels/station.txt \
    && pip install --no-deps /wheels/inspect_*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin inspect \
    && mkdir -p /station/inbox /station/archive /station/quarantine /station/state \
    && chown -R inspect:inspect /station
USER inspect
WORKDIR /station
VOLUME ["/station/inbox", "/station/archive", "/station/quarantine", "/station/state"]
STOPSIGNAL SIGTERM
# healthy while the station is running and has written its status in the last 30 s
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["inspect", "station", "status", "--state-dir", "/station/state"]
ENTRYPOINT ["inspect"]
CMD ["station", "run", "/station/station.toml", "--log-json"]
