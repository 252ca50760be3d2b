package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the results for people.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVERDICT\tEXPECTED\tOBSERVED")
	for _, r := range results {
		observed := r.Observed
		if r.Reason != "" {
			observed += " [" + r.Reason + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Scenario, r.Verdict, r.Expected, observed)
	}
	return tw.Flush()
}

// WriteJSON prints the results for machines, one JSON document.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Results []Result `json:"results"`
		Failed  bool     `json:"failed"`
	}{results, Failed(results)})
}
