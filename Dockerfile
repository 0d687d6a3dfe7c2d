# Builds the single leadrelay binary into a small image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /leadrelay ./cmd/leadrelay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /leadrelay /leadrelay
USER nonroot
ENTRYPOINT ["/leadrelay"]
CMD ["serve"]
