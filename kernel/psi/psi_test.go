package psi

import (
	"errors"
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	p, err := Parse([]byte("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.75 avg60=0.00 avg300=0.00 total=789\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Some != (Stall{1.5, 0.25, 0, 123456}) || p.Full != (Stall{0.75, 0, 0, 789}) {
		t.Errorf("parsed %+v", p)
	}
	if _, err := Parse([]byte("nonsense\n")); err == nil {
		t.Error("a file without some/full parsed")
	}
	if _, err := Parse([]byte("some avg10=x avg60=0 avg300=0 total=0\n")); err == nil {
		t.Error("a bad number parsed")
	}
}

// The node's file, as this kernel has it: read, or off or missing, said so.
func TestReadNode(t *testing.T) {
	p, err := Read(nil, "/proc/pressure/memory", make([]byte, 256))
	switch {
	case errors.Is(err, ErrOff), errors.Is(err, ErrMissing):
		if _, serr := os.Stat("/proc/pressure/memory"); errors.Is(err, ErrMissing) != (serr != nil) {
			t.Errorf("error %v, but stat says %v", err, serr)
		}
		t.Logf("PSI here: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		if p.Some.TotalUs < p.Full.TotalUs {
			t.Errorf("some stalled %d µs, less than full's %d", p.Some.TotalUs, p.Full.TotalUs)
		}
	}
}
