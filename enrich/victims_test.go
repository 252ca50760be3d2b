package enrich

import (
	"testing"
	"time"
)

func TestVictimSet(t *testing.T) {
	var v victimSet
	now := time.Unix(1000, 0)
	v.add(now, 10, 0, 11)
	if !v.has(10, now) || !v.has(11, now.Add(victimMemory)) {
		t.Error("a recent victim is not remembered")
	}
	if v.has(0, now) || v.has(12, now) {
		t.Error("pid 0 or one never killed taken for a victim")
	}
	if v.has(10, now.Add(victimMemory+time.Second)) {
		t.Error("a victim is remembered past victimMemory: its pid may be another process's by now")
	}
	// Bounded: a storm of more victims than maxVictims.
	for pid := range uint32(3 * maxVictims) {
		v.add(now, pid+100)
	}
	if n := len(v.at); n > maxVictims || !v.has(3*maxVictims+99, now) {
		t.Errorf("%d remembered (max %d), or the newest forgotten", n, maxVictims)
	}
}
