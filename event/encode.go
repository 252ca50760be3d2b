package event

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// The encoder of the schema's types: the bytes encoding/json would write
// (encode_test.go holds it to that, type by type), at half the cost.
// Marshalling each top-level field with encoding/json was a third of the
// daemon's own user time per kill in a storm (perf): a pooled encoder
// state, a type lookup in a sync.Map and an interface copy per field,
// then reflection through every nested value. Here each type's plan (its
// fields' keys, indexes and encoders) is built once, and a line is
// appended into one pooled buffer. Kinds the schema does not use on a
// kill's path (floats, interfaces, other maps, json.Marshalers besides
// time.Time) go through encoding/json itself.

// encodeFn appends v's JSON to buf.
type encodeFn func(buf []byte, v reflect.Value) []byte

type field struct {
	name      string
	index     int
	omitempty bool
	enc       encodeFn
}

var (
	plans     sync.Map // reflect.Type → encodeFn
	fieldSets sync.Map // reflect.Type → []field
	bufPool   = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// embed writes the exported fields of the struct v points to as top-level
// keys of e (a pointer: a kill's struct is not copied once more). An
// omitempty field is left out when its value is the zero value.
func embed(e *zerolog.Event, v any) {
	rv := reflect.ValueOf(v).Elem()
	bp := bufPool.Get().(*[]byte)
	for _, f := range fieldsOf(rv.Type()) {
		fv := rv.Field(f.index)
		if f.omitempty && fv.IsZero() {
			continue
		}
		*bp = f.enc((*bp)[:0], fv)
		e.RawJSON(f.name, *bp)
	}
	if cap(*bp) <= 64<<10 { // a huge line's buffer is not kept
		bufPool.Put(bp)
	}
}

// encoderOf returns t's encoder, built on first use. A struct's encoder
// looks its fields' encoders up on its own first use, so building one never
// recurses, whatever the type holds.
func encoderOf(t reflect.Type) encodeFn {
	if enc, ok := plans.Load(t); ok {
		return enc.(encodeFn)
	}
	enc, _ := plans.LoadOrStore(t, newEncoder(t))
	return enc.(encodeFn)
}

func newEncoder(t reflect.Type) encodeFn {
	if t == timeType {
		return encodeTime
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return encodeWithJSON
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(buf []byte, v reflect.Value) []byte { return strconv.AppendBool(buf, v.Bool()) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(buf []byte, v reflect.Value) []byte { return strconv.AppendInt(buf, v.Int(), 10) }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(buf []byte, v reflect.Value) []byte { return strconv.AppendUint(buf, v.Uint(), 10) }
	case reflect.String:
		return func(buf []byte, v reflect.Value) []byte { return appendString(buf, v.String()) }
	case reflect.Pointer:
		elem := encoderOf(t.Elem())
		return func(buf []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(buf, "null"...)
			}
			return elem(buf, v.Elem())
		}
	case reflect.Struct:
		return structEncoder(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return encodeWithJSON // base64, as encoding/json writes []byte
		}
		elem := encoderOf(t.Elem())
		return func(buf []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(buf, "null"...)
			}
			buf = append(buf, '[')
			for i := range v.Len() {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = elem(buf, v.Index(i))
			}
			return append(buf, ']')
		}
	case reflect.Map:
		if t.Key() == reflect.TypeFor[string]() && t.Elem().Kind() == reflect.String {
			return encodeStringMap
		}
	}
	return encodeWithJSON
}

// fieldsOf returns the struct type's written fields, in order.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, omitempty := jsonName(f)
		if name == "" {
			continue
		}
		fs = append(fs, field{name: name, index: i, omitempty: omitempty, enc: encoderOf(f.Type)})
	}
	fieldSets.Store(t, fs)
	return fs
}

func structEncoder(t reflect.Type) encodeFn {
	var fs []field
	var keys []string // `"name":`, quoted once
	var once sync.Once
	return func(buf []byte, v reflect.Value) []byte {
		once.Do(func() {
			fs = fieldsOf(t)
			for _, f := range fs {
				keys = append(keys, string(appendString(nil, f.name))+":")
			}
		})
		buf = append(buf, '{')
		first := true
		for i, f := range fs {
			fv := v.Field(f.index)
			if f.omitempty && isEmpty(fv) {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, keys[i]...)
			buf = f.enc(buf, fv)
		}
		return append(buf, '}')
	}
}

// isEmpty is encoding/json's omitempty test: a struct is never empty.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func encodeTime(buf []byte, v reflect.Value) []byte {
	t := v.Interface().(time.Time)
	if y := t.Year(); y < 0 || y >= 10000 {
		return encodeWithJSON(buf, v) // encoding/json's error case
	}
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, '"')
}

func encodeStringMap(buf []byte, v reflect.Value) []byte {
	if v.IsNil() {
		return append(buf, "null"...)
	}
	keys := make([]string, 0, v.Len())
	for _, k := range v.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendString(buf, v.MapIndex(reflect.ValueOf(k)).String())
	}
	return append(buf, '}')
}

// encodeWithJSON is the way out for kinds this encoder does not know.
func encodeWithJSON(buf []byte, v reflect.Value) []byte {
	data, err := json.Marshal(v.Interface())
	if err != nil {
		// Only types without a JSON form fail; none is used here.
		return append(buf, "null"...)
	}
	return append(buf, data...)
}

// appendString quotes s as encoding/json does. Plain printable ASCII, what
// nearly every value is (comms are escaped at decode), is copied as it is;
// anything else goes through encoding/json, which escapes HTML characters,
// control characters, U+2028/9 and invalid UTF-8 its own way.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			data, _ := json.Marshal(s)
			return append(buf, data...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// plainByte: the bytes encoding/json writes as they are in a string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()
