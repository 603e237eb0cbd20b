# syntax=docker/dockerfile:1
# realmgate container image (docs/deploy.md).
#
#   docker build -t realmgate .
#   docker run --rm -p 8080:8080 -v $PWD/realmgate.yaml:/etc/realmgate/realmgate.yaml:ro realmgate
#
# Stage 1 builds a static binary (no cgo, no libc); stage 2 is distroless
# "static" (CA certificates, /etc/passwd with the nonroot user, tzdata, no
# shell, no package manager), running as that non-root user.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Module downloads in a layer of their own: rebuilt only when go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that runs without libc (distroless/static, scratch).
# -trimpath: no build-machine paths in the binary (reproducible, nothing leaked).
# -ldflags "-s -w": no symbol table or DWARF (smaller image; stack traces keep function names).
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/realmgate ./cmd/realmgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/realmgate /usr/local/bin/realmgate
# 65532 is distroless's "nonroot" user; numeric, so Kubernetes' runAsNonRoot
# can verify it without reading /etc/passwd.
USER 65532:65532
# 8080: sign-ins (listen), 8443: admin API (admin_api.listen), 9090: metrics
# and probes (ops.listen). The configuration must bind them on 0.0.0.0, not
# the loopback defaults, to be reachable from outside the container.
EXPOSE 8080 8443 9090
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and the
# binary has no health-probe subcommand. Kubernetes probes GET /healthz
# (liveness) and /readyz (readiness) on the ops port instead (deploy/helm);
# with plain Docker, watch http://HOST:9090/readyz from outside.
ENTRYPOINT ["/usr/local/bin/realmgate"]
CMD ["serve", "--config", "/etc/realmgate/realmgate.yaml"]
