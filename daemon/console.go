package daemon

import (
	"encoding/json"
	"io"
	"os"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/explain"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// consoleWriter is --format console: each kill and each alloc_refused as
// the one sentence explain writes, every other line as zerolog's console
// format. zerolog hands it one JSON line per Write.
type consoleWriter struct {
	out     io.Writer
	style   explain.Style
	console zerolog.ConsoleWriter
}

func newConsoleWriter(out io.Writer, color bool) *consoleWriter {
	return &consoleWriter{
		out:     out,
		style:   explain.Style{Color: color},
		console: zerolog.ConsoleWriter{Out: out, NoColor: !color, TimeFormat: "2006-01-02T15:04:05.000Z07:00"},
	}
}

func (w *consoleWriter) Write(p []byte) (int, error) {
	var head struct{ Message string }
	if json.Unmarshal(p, &head) == nil && head.Message == (event.Kill{}).Name() {
		var k event.Kill
		if err := json.Unmarshal(p, &k); err == nil {
			if _, err := io.WriteString(w.out, w.style.Sentence(k)+"\n"); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	if head.Message == (event.AllocRefused{}).Name() {
		var a event.AllocRefused
		if err := json.Unmarshal(p, &a); err == nil {
			if _, err := io.WriteString(w.out, w.style.AllocSentence(a)+"\n"); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return w.console.Write(p)
}

// colorFor says whether console output to stdout gets colour: only on a
// terminal, and never with NO_COLOR set (https://no-color.org).
func colorFor(cfg Config, stdout io.Writer) bool {
	if cfg.Output != "" {
		return false
	}
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := stdout.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
