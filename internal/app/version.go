package app

// Version is LeadRelay's version, set at build time with
// -ldflags "-X leadrelay/internal/app.Version=…".
var Version = "dev"
