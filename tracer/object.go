package tracer

import (
	"crypto/sha256"
	"encoding/hex"
)

// ObjectHash is the sha256 of the BPF object this build embeds for its
// architecture: which kernel-side program a report came from.
func ObjectHash() string {
	sum := sha256.Sum256(_OomtraceBytes)
	return hex.EncodeToString(sum[:])
}
