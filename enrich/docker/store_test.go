package docker

import (
	"maps"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	full := strings.Repeat("0123456789abcdef", 4)
	for id, want := range map[string]bool{
		full:                  true,
		full[:63]:             false, // short
		full + "0":            false, // long
		full[:12]:             false, // a short id is ambiguous
		strings.ToUpper(full): false, // Docker's ids are lowercase
		full[:63] + "g":       false,
		"":                    false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func id(n byte) string { return strings.Repeat(string('a'+n), 64) }

func TestFromEvent(t *testing.T) {
	info := fromEvent(eventActor{ID: id(0), Attributes: map[string]string{
		"name": "web", "image": "nginx", "exitCode": "137", "app": "shop",
	}})
	want := Info{ID: id(0), Name: "web", Image: "nginx", Labels: map[string]string{"app": "shop"}}
	if info.ID != want.ID || info.Name != want.Name || info.Image != want.Image || !maps.Equal(info.Labels, want.Labels) {
		t.Fatalf("got %+v, want %+v", info, want)
	}
}
