# The reference policy server (examples/policy-server) for the kind suite.
# Build context: examples/policy-server (a standalone crate with its own Cargo.lock).
FROM docker.io/library/rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin policy-server

FROM docker.io/library/debian:bookworm-slim
COPY --from=build /src/target/release/policy-server /usr/local/bin/policy-server
USER 65532
ENTRYPOINT ["policy-server"]
