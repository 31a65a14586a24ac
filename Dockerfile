# syntax=docker/dockerfile:1
# Build a static OneID binary, then ship it alone in a small non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/oneid ./app

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oneid /oneid
ENV ONEID_ADDR=0.0.0.0:8080 \
    ONEID_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["/oneid", "healthcheck"]
ENTRYPOINT ["/oneid"]
CMD ["serve"]
