# syntax=docker/dockerfile:1
# The nurion image: one binary for every process (stage, coordinator, run, CLI).
#   docker build -t nurion .
#   docker run --rm nurion --help
# Two stages on Debian 12: the first builds with cmake, the second has only the runtime libraries.

FROM debian:bookworm-slim AS build
# Versions come from the bookworm release the base image tracks (pinning breaks at each point
# release, when Debian drops the previous version from the archive).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librdkafka-dev libavro-dev libjansson-dev libpq-dev libmicrohttpd-dev \
        libcurl4-openssl-dev zlib1g-dev \
        libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev libswscale-dev libvips-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNU_TESTS=OFF -DNU_BENCH=OFF \
    && cmake --build /build -j "$(nproc)" --target nurion \
    && strip /build/bin/nurion

FROM debian:bookworm-slim
# libav* and libvips: the media operators. python3 runs exec UDFs written in Python and the compose healthchecks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        librdkafka1 libavro23 libjansson4 libpq5 libmicrohttpd12 libcurl4 zlib1g \
        libavformat59 libavcodec59 libavfilter8 libavutil57 libvips42 \
        ca-certificates python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 nurion \
    && useradd --system --uid 10001 --gid nurion --home-dir /var/lib/nurion --create-home nurion
COPY --from=build /build/bin/nurion /usr/local/bin/nurion
COPY --from=build /src/examples /examples
COPY --from=build /src/python/nurion_udf.py /usr/local/lib/nurion/nurion_udf.py
ENV PYTHONPATH=/usr/local/lib/nurion
WORKDIR /var/lib/nurion
USER 10001:10001
# the stage endpoint (http.listen) and the coordinator's API
EXPOSE 9464 8080
ENTRYPOINT ["nurion"]
CMD ["--help"]
