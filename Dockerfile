# syntax=docker/dockerfile:1
# The meshctl image: a static binary on distroless, as the in-cluster
# reconciler runs it (meshctl install-reconciler). Build from the
# repository root:
#
#	docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t ghcr.io/meshctl/meshctl:dev .
#
# The builder runs on the build host and cross-compiles for the target
# platform (docker buildx build --platform linux/amd64,linux/arm64 ...).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# go.mod pins go 1.26.0: the image's toolchain builds it, never a download.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/meshctl ./cmd/meshctl

# static-debian12: CA certificates and /etc/passwd, no shell; :nonroot is
# user 65532, which the Deployment's runAsUser also names.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meshctl /meshctl
USER 65532:65532
ENTRYPOINT ["/meshctl"]
