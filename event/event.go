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
	"encoding/json"
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

// embed writes the exported fields of the struct v as top-level keys of e,
// each value marshalled by encoding/json.
func embed(e *zerolog.Event, v any) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, omitempty := jsonName(f)
		if name == "" {
			continue
		}
		fv := rv.Field(i)
		if omitempty && fv.IsZero() {
			continue
		}
		data, err := json.Marshal(fv.Interface())
		if err != nil {
			// Only types without a JSON form fail; none is used here.
			data = []byte(`null`)
		}
		e.RawJSON(name, data)
	}
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
