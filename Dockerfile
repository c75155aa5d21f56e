# The madoguchi image: the production profile by default (the `dev` card is refused, keys and an
# https public URL are required). docker-compose.yml opts into the development profile for a
# local demo, and says so.

FROM rust:1.88-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: changing the code does not rebuild the ~480 crates.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/catalog_load.rs \
    && cargo build --release --locked --bin madoguchi \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
COPY static ./static
COPY templates ./templates
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin madoguchi

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin madoguchi
WORKDIR /app
COPY --from=build /src/target/release/madoguchi /usr/local/bin/madoguchi
COPY config ./config
COPY forms ./forms
# The service writes attachments (and, with the file transport, mail) under /app/.data.
RUN mkdir -p /app/.data/attachments /app/.data/mail && chown -R madoguchi:madoguchi /app/.data
ENV MADOGUCHI_PROFILE=production
USER madoguchi
EXPOSE 8080
CMD ["madoguchi", "serve"]
