FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ats-mafia

FROM debian:bookworm-slim
COPY --from=build /src/target/release/ats-mafia /usr/local/bin/ats-mafia
ENTRYPOINT ["ats-mafia"]
CMD ["serve"]
