# syntax=docker/dockerfile:1
# Build a static OneID binary (pure Go: the embedded SQLite driver needs no
# cgo), then ship it alone in a small distroless image that runs as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/oneid ./app \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oneid /oneid
# The data folder (embedded database, generated key, kept exports) belongs to
# the non-root user, so a fresh volume mounted there is writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV ONEID_ADDR=0.0.0.0:8080 \
    ONEID_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
# No shell or curl in the image: the binary asks its own /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["/oneid", "healthcheck"]
ENTRYPOINT ["/oneid"]
CMD ["serve"]
