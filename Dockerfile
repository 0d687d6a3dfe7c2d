# Builds the leadrelay binary into a small image that runs as the
# distroless nonroot user (uid 65532). The last stage, the default target,
# is the relay; the "crmsim" target is the stand-alone CRM simulator
# (tools/crmsim) for compose's "sim" profile, kept out of the relay image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /leadrelay ./cmd/leadrelay \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /crmsim ./tools/crmsim \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot AS crmsim
COPY --from=build /crmsim /crmsim
# /data belongs to nonroot, so a named volume mounted there (the simulator's
# leads file) is created writable for it: Docker copies the image
# directory's owner into an empty volume.
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot
ENTRYPOINT ["/crmsim"]

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /leadrelay /leadrelay
USER nonroot
ENTRYPOINT ["/leadrelay"]
CMD ["serve"]
