// Package event is the schema of the daemon's JSON lines: one Go type per
// message, with json tags. The daemon writes every line from these types
// (through zerolog, each a LogObjectMarshaler), and the tests, the benchmark
// and the documentation test decode through the same types, so the lines,
// the decoders and docs/events.md cannot drift apart.
//
// Every field of a type is written, null when unknown, unless its tag says
// omitempty; a struct cannot hold a key twice, so no line repeats one.
package event

import (
	"reflect"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// SchemaVersion changes only when a field changes meaning or goes away;
// added fields keep it. docs/events.md describes version 1.
const SchemaVersion = 1

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

// Message is what every line type is: its fields, and the name its
// "message" key carries.
type Message interface {
	zerolog.LogObjectMarshaler
	Name() string
}

// Write writes m as one line at level.
func Write(log zerolog.Logger, level zerolog.Level, m Message) {
	log.WithLevel(level).EmbedObject(m).Msg(m.Name())
}

// jsonName is a field's key, "" for a field that is not written.
func jsonName(f reflect.StructField) (name string, omitempty bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(","+opts+",", ",omitempty,")
}
