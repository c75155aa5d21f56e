# Build a release binary, then run it on a slim image with the catalog and configuration.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /app madoguchi
WORKDIR /app
COPY --from=build /src/target/release/madoguchi /usr/local/bin/madoguchi
COPY config ./config
COPY forms ./forms
USER madoguchi
EXPOSE 8080
CMD ["madoguchi", "serve"]
