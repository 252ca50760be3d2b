package verify

// Verdicts.
const (
	Pass          = "pass"
	Fail          = "fail"
	NotApplicable = "not_applicable"
)

// Result is one scenario's outcome.
type Result struct {
	Scenario string         `json:"scenario"`
	Expected string         `json:"expected"`
	Observed string         `json:"observed"`
	Verdict  string         `json:"verdict"`
	Reason   string         `json:"reason,omitempty"` // why not applicable, or what failed
	Numbers  map[string]any `json:"numbers"`          // the raw figures behind the verdict
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Verdict == Fail {
			return true
		}
	}
	return false
}
