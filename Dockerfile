# buildcost: multi-stage build, small non-root runtime image.
#   docker build -t buildcost .
#   docker run --rm -p 9898:9898 -v $PWD/buildcost.toml:/etc/buildcost/buildcost.toml buildcost run
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin buildcost \
    && strip target/release/buildcost

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin buildcost \
    && mkdir -p /var/lib/buildcost/store /var/lib/buildcost/events \
    && chown -R 10001 /var/lib/buildcost
COPY --from=build /src/target/release/buildcost /usr/local/bin/buildcost
USER 10001
ENV BUILDCOST_CONFIG=/etc/buildcost/buildcost.toml
EXPOSE 9898
ENTRYPOINT ["buildcost"]
CMD ["run"]
