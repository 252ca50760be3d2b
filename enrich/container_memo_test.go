package enrich

import (
	"fmt"
	"testing"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
)

func TestContainerMemo(t *testing.T) {
	var c containerMemo
	const path = "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	want := cgroups.ParseContainer(path)
	if want.Runtime != "docker" {
		t.Fatalf("fixture path parses as %+v", want)
	}
	for range 2 { // parsed, then remembered
		if got := c.parse(path); got != want {
			t.Fatalf("parse(%q) = %+v, want %+v", path, got, want)
		}
	}
	for i := range containerMemoMax + 1 {
		c.parse(fmt.Sprint("/system.slice/u", i, ".service"))
	}
	if len(c.m) > containerMemoMax {
		t.Errorf("%d paths remembered, bound %d", len(c.m), containerMemoMax)
	}
	if got := c.parse(path); got != want {
		t.Errorf("after starting over: %+v", got)
	}
}
