# syntax=docker/dockerfile:1
# logpipe image: a static binary on distroless, running as nonroot.
#   docker build -t logpipe .
#   docker run --rm logpipe formats

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/logpipe ./cmd/logpipe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/logpipe /logpipe
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/logpipe"]
