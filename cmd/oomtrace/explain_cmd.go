package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/explain"
)

// explainMain runs `oomtrace explain [FILE|-]`: reads oomtrace's JSON lines
// (a file, or stdin) and prints each kill as one sentence and the
// breakdown of its score. Other messages are passed over. A line that is
// not an event is named on stderr and the rest still read. Exit 0, or 1
// when a line could not be read, 2 on bad arguments.
func explainMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oomtrace explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: oomtrace explain [FILE|-]: each oom_kill line of FILE (default: stdin) as a sentence, and why its score")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	in, name := stdin, "stdin"
	if p := fs.Arg(0); p != "" && p != "-" {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(stderr, "oomtrace explain: %v\n", err)
			return 1
		}
		defer f.Close()
		in, name = f, p
	}
	return explainLines(in, name, stdout, stderr)
}

func explainLines(in io.Reader, name string, stdout, stderr io.Writer) int {
	var style explain.Style
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a line with many labels is long
	status, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		var head struct{ Message string }
		if err := json.Unmarshal(line, &head); err != nil {
			fmt.Fprintf(stderr, "oomtrace explain: %s:%d: not a JSON line: %v\n", name, n, err)
			status = 1
			continue
		}
		if head.Message != (event.Kill{}).Name() {
			continue
		}
		var k event.Kill
		if err := json.Unmarshal(line, &k); err != nil {
			fmt.Fprintf(stderr, "oomtrace explain: %s:%d: not an oom_kill event: %v\n", name, n, err)
			status = 1
			continue
		}
		fmt.Fprintln(stdout, style.Sentence(k))
		for _, w := range style.Why(k) {
			fmt.Fprintln(stdout, w)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "oomtrace explain: %s: %v\n", name, err)
		status = 1
	}
	return status
}
