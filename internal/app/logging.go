package app

import (
	"io"
	"os"

	"golang.org/x/term"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"leadrelay/config"
)

// NewLogger builds the process logger: JSON for production, console for
// people, writing to w; coloured only when w is a terminal, so a log
// redirected to a file holds no escape codes.
func NewLogger(cfg config.Config, w io.Writer) *zap.Logger {
	var level zapcore.Level
	_ = level.Set(cfg.Log.Level) // validated by config.Load
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.Log.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(w) {
			encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
