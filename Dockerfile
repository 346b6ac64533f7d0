# evgw in a container: the wheel is built with maturin in a first stage (Rust and Python
# 3.11), the runtime image is python:3.11-slim with the wheel installed, run as a non-root
# user.
#
#   docker build -t evgw .
#   docker run -d --name evgw --restart on-failure \
#       -v /etc/evgw:/etc/evgw:ro -v evgw-state:/var/lib/evgw \
#       --device /dev/ttyUSB0 -e EVGW_API_TOKEN=... evgw
#
# The configuration is /etc/evgw/evgw.toml (mounted read-only), the state (the SQLite store)
# lives in the /var/lib/evgw volume. `docker stop` sends SIGTERM: the gateway leaves every
# charger at its failsafe current and closes the store; give it the time it may take
# (`docker stop -t 45`, `stop_grace_period: 45s` in compose; see packaging/systemd/evgw.service).
# Modbus TCP chargers and the central system are reached over the container's network; use
# `--network host` when chargers are found by broadcast or the site's routing demands it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The workspace's rust-version (Cargo.toml) is 1.85; any newer stable builds it.
ARG RUST_IMAGE=rust:1-slim-bookworm

FROM ${RUST_IMAGE} AS rust

FROM ${PYTHON_IMAGE} AS build
# The Rust toolchain from the official image, beside the very Python the runtime image has,
# so the wheel is built for exactly that interpreter.
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "maturin>=1.9,<2"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY rust ./rust
COPY gateway ./gateway
RUN maturin build --release --locked --out /wheels

FROM ${PYTHON_IMAGE}
# The gateway's user; dialout for RS-485 adapters passed in with --device.
RUN useradd --system --user-group --home-dir /var/lib/evgw --shell /usr/sbin/nologin \
        --groups dialout evgw \
    && install -d -m 0750 -o root -g evgw /etc/evgw \
    && install -d -m 0750 -o evgw -g evgw /var/lib/evgw
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels
COPY examples/depot.toml /usr/share/doc/evgw/examples/depot.toml
COPY docs/configuration.md /usr/share/doc/evgw/configuration.md
# [gateway] store defaults to $STATE_DIRECTORY/evgw.sqlite3, as under systemd.
ENV STATE_DIRECTORY=/var/lib/evgw PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/evgw"]
WORKDIR /var/lib/evgw
USER evgw
STOPSIGNAL SIGTERM
# `evgw status` asks the gateway's local API ([api] in the configuration; a read token in
# EVGW_API_TOKEN): exit 3 means the gateway does not answer, which is what makes the container
# unhealthy. Exit 1 (a charger offline, an alarm) is the site's problem, not the container's.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD evgw status --url "${EVGW_API_URL:-http://127.0.0.1:8080}" > /dev/null 2>&1; \
        [ $? -ne 3 ] || exit 1
ENTRYPOINT ["evgw"]
CMD ["run", "--config", "/etc/evgw/evgw.toml"]
