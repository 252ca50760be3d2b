package daemon

import (
	"io"
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkLogKill is the cost of writing one kill's line, enrichment
// already done: the part of the CPU per kill that is encoding.
func BenchmarkLogKill(b *testing.B) {
	log := zerolog.New(io.Discard).With().Timestamp().Logger()
	k, r := sampleKill(true), sampleResult()
	b.ReportAllocs()
	for b.Loop() {
		logKill(log, k, r)
	}
}
