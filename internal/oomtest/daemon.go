package oomtest

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// DaemonGet asks a running oomtrace's metrics server for path ("/metrics",
// "/healthz"), at the address its startup line (among lines, its JSON
// output) names, and returns the status code and body.
func DaemonGet(tb testing.TB, lines []string, path string) (int, string) {
	tb.Helper()
	var addr string
	for _, l := range lines {
		var e struct {
			Message     string
			MetricsAddr string `json:"metrics_addr"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Message == "oomtrace_started" {
			addr = e.MetricsAddr
		}
	}
	if addr == "" {
		tb.Fatalf("no metrics_addr in the startup line: %q", lines)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}
