package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
