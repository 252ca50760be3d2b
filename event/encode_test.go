package event

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// referenceEmbed is what embed replaced: each top-level field marshalled by
// encoding/json. The schema's encoder must write the same bytes.
func referenceEmbed(e *zerolog.Event, v any) {
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		name, omitempty := jsonName(rv.Type().Field(i))
		if name == "" {
			continue
		}
		fv := rv.Field(i)
		if omitempty && fv.IsZero() {
			continue
		}
		data, err := json.Marshal(fv.Interface())
		if err != nil {
			data = []byte(`null`)
		}
		e.RawJSON(name, data)
	}
}

type referenceObject struct{ v any }

func (r referenceObject) MarshalZerologObject(e *zerolog.Event) { referenceEmbed(e, r.v) }

func encodeBoth(t *testing.T, m Message) (got, want []byte) {
	t.Helper()
	var a, b bytes.Buffer
	la, lb := zerolog.New(&a), zerolog.New(&b)
	la.Info().EmbedObject(m).Msg(m.Name())
	lb.Info().EmbedObject(referenceObject{m}).Msg(m.Name())
	return a.Bytes(), b.Bytes()
}

// fill sets every field of v to a non-zero value: pointers allocated,
// slices of two, maps of three keys; strings from the odd ones, so both of
// appendString's paths run.
func fill(v reflect.Value, n *int) {
	*n++
	odd := []string{"plain", `quote" back\slash`, "<html>&amp;", "tab\tnew\nline\x01", "ünïcödé", "bad \xff utf8", "line\u2028sep"}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(*n) * 7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 1000003)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) / 3)
	case reflect.String:
		v.SetString(odd[*n%len(odd)])
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 3, 11, 45, 59, 420785394, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 3 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, n)
			e := reflect.New(v.Type().Elem()).Elem()
			if e.Kind() == reflect.Interface {
				// A string, a number (the labels cut) and nothing.
				switch i {
				case 0:
					e.Set(reflect.ValueOf(odd[*n%len(odd)]))
				case 1:
					e.Set(reflect.ValueOf(*n * 3))
				}
			} else {
				fill(e, n)
			}
			v.SetMapIndex(k, e)
		}
	}
}

func TestEncoderWritesWhatEncodingJSONWrites(t *testing.T) {
	all := append(append([]Message{Diagnostic{}}, tabled...), described...)
	for _, m := range all {
		for _, variant := range []string{"zero", "filled", "empty slices"} {
			v := reflect.New(reflect.TypeOf(m)).Elem()
			switch variant {
			case "filled":
				n := 0
				fill(v, &n)
			case "empty slices":
				n := 0
				fill(v, &n)
				emptySlices(v)
			}
			msg := v.Interface().(Message)
			got, want := encodeBoth(t, msg)
			if !bytes.Equal(got, want) {
				t.Errorf("%s, %s:\n got %s\nwant %s", m.Name(), variant, got, want)
			}
			if !json.Valid(got) {
				t.Errorf("%s, %s: invalid JSON %s", m.Name(), variant, got)
			}
		}
	}
}

// Floats as encoding/json writes them, across its switch to exponent form
// and its trimming of the exponent.
func TestAppendFloatWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, 123456.789, 1e-6, 9.99e-7, 1e-7,
		-2.5e-9, 1e20, 1e21, 1.5e300, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f, 64); !bytes.Equal(got, want) {
			t.Errorf("float64 %v: got %s, want %s", f, got, want)
		}
		if math.IsInf(float64(float32(f)), 0) {
			continue // beyond float32
		}
		want32, _ := json.Marshal(float32(f))
		if got := appendFloat(nil, float64(float32(f)), 32); !bytes.Equal(got, want32) {
			t.Errorf("float32 %v: got %s, want %s", float32(f), got, want32)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := appendFloat(nil, f, 64); string(got) != "null" {
			t.Errorf("%v: got %s, want null (encoding/json refuses it)", f, got)
		}
	}
}

// emptySlices makes every slice non-nil and empty, every map empty.
func emptySlices(v reflect.Value) {
	walkValues(v, false, func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		case reflect.Map:
			v.Set(reflect.MakeMap(v.Type()))
		}
	})
}

// walkValues calls f on every value under v but pointers and structs, which
// it goes through; a slice is handed to f whole, or with descendSlices its
// elements are walked instead.
func walkValues(v reflect.Value, descendSlices bool, f func(reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkValues(v.Elem(), descendSlices, f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkValues(v.Field(i), descendSlices, f)
			}
		}
	case reflect.Slice:
		if descendSlices {
			for i := range v.Len() {
				walkValues(v.Index(i), descendSlices, f)
			}
			return
		}
		f(v)
	default:
		f(v)
	}
}

func BenchmarkEmbedKill(b *testing.B) {
	v := reflect.New(reflect.TypeFor[Kill]()).Elem()
	n := 0
	fill(v, &n)
	plainStrings(v)
	k := v.Interface().(Kill)
	log := zerolog.New(io.Discard)
	b.Run("schema encoder", func(b *testing.B) {
		for b.Loop() {
			log.Info().EmbedObject(k).Msg("oom_kill")
		}
	})
	b.Run("encoding/json per field", func(b *testing.B) {
		for b.Loop() {
			log.Info().EmbedObject(referenceObject{k}).Msg("oom_kill")
		}
	})
}

// plainStrings sets every string to printable ASCII, as real lines have.
func plainStrings(v reflect.Value) {
	walkValues(v, true, func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString("cand-web-1234")
		case reflect.Map:
			if v.Type().Elem().Kind() == reflect.String {
				for _, k := range v.MapKeys() {
					v.SetMapIndex(k, reflect.ValueOf("plain"))
				}
			}
		}
	})
}
