package event

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

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
// kill's path (interfaces, other maps, json.Marshalers besides time.Time)
// go through encoding/json itself.

// encodeFn appends the JSON of the value at p (of the type it was built
// for) to buf. Values are reached by their addresses and fields by their
// offsets, not through reflect.Value: reflect.Value.Field and its
// interface checks were half of what encoding cost (perf, in a storm).
type encodeFn func(buf []byte, p unsafe.Pointer) []byte

type field struct {
	name      string
	offset    uintptr
	omitempty bool
	enc       encodeFn
	// empty is encoding/json's omitempty test of the field (nested);
	// zero is reflect's IsZero (top level: what embed has always left
	// out). Set only for omitempty fields.
	empty, zero func(p unsafe.Pointer) bool
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
	rv := reflect.ValueOf(v)
	p := rv.UnsafePointer()
	bp := bufPool.Get().(*[]byte)
	for _, f := range fieldsOf(rv.Type().Elem()) {
		fp := unsafe.Add(p, f.offset)
		if f.omitempty && f.zero(fp) {
			continue
		}
		*bp = f.enc((*bp)[:0], fp)
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

// sliceHeader is how a slice lies in memory.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

func newEncoder(t reflect.Type) encodeFn {
	if t == timeType {
		return encodeTime
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return withJSON(t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(buf []byte, p unsafe.Pointer) []byte { return strconv.AppendBool(buf, *(*bool)(p)) }
	case reflect.Int:
		return appendIntAt[int]
	case reflect.Int8:
		return appendIntAt[int8]
	case reflect.Int16:
		return appendIntAt[int16]
	case reflect.Int32:
		return appendIntAt[int32]
	case reflect.Int64:
		return appendIntAt[int64]
	case reflect.Uint:
		return appendUintAt[uint]
	case reflect.Uint8:
		return appendUintAt[uint8]
	case reflect.Uint16:
		return appendUintAt[uint16]
	case reflect.Uint32:
		return appendUintAt[uint32]
	case reflect.Uint64:
		return appendUintAt[uint64]
	case reflect.Uintptr:
		return appendUintAt[uintptr]
	case reflect.Float64:
		return func(buf []byte, p unsafe.Pointer) []byte { return appendFloat(buf, *(*float64)(p), 64) }
	case reflect.Float32:
		return func(buf []byte, p unsafe.Pointer) []byte { return appendFloat(buf, float64(*(*float32)(p)), 32) }
	case reflect.String:
		return func(buf []byte, p unsafe.Pointer) []byte { return appendString(buf, *(*string)(p)) }
	case reflect.Pointer:
		elem := encoderOf(t.Elem())
		return func(buf []byte, p unsafe.Pointer) []byte {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				return append(buf, "null"...)
			}
			return elem(buf, q)
		}
	case reflect.Struct:
		return structEncoder(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return withJSON(t) // base64, as encoding/json writes []byte
		}
		elem, size := encoderOf(t.Elem()), t.Elem().Size()
		return func(buf []byte, p unsafe.Pointer) []byte {
			s := (*sliceHeader)(p)
			if s.data == nil {
				return append(buf, "null"...)
			}
			buf = append(buf, '[')
			for i := range s.len {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = elem(buf, unsafe.Add(s.data, uintptr(i)*size))
			}
			return append(buf, ']')
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Key().PkgPath() == "" {
			return func(buf []byte, p unsafe.Pointer) []byte { return encodeStringMap(buf, reflect.NewAt(t, p).Elem()) }
		}
	case reflect.Interface:
		// A container's labels: strings, and the number cut. The value's
		// own type decides, as encoding/json's does.
		return func(buf []byte, p unsafe.Pointer) []byte {
			return encodeValue(buf, reflect.NewAt(t, p).Elem().Elem())
		}
	}
	return withJSON(t)
}

var stringType = reflect.TypeFor[string]()

// encodeValue writes v (an interface's dynamic value, or a map's) with its
// type's encoder; the zero Value (a nil interface) is null.
func encodeValue(buf []byte, v reflect.Value) []byte {
	if !v.IsValid() {
		return append(buf, "null"...)
	}
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return encoderOf(v.Type())(buf, c.UnsafePointer())
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
		fd := field{name: name, offset: f.Offset, omitempty: omitempty, enc: encoderOf(f.Type)}
		if omitempty {
			fd.empty, fd.zero = emptyTest(f.Type), zeroTest(f.Type)
		}
		fs = append(fs, fd)
	}
	fieldSets.Store(t, fs)
	return fs
}

func structEncoder(t reflect.Type) encodeFn {
	var fs []field
	var keys []string // `"name":`, quoted once
	var once sync.Once
	return func(buf []byte, p unsafe.Pointer) []byte {
		once.Do(func() {
			fs = fieldsOf(t)
			for _, f := range fs {
				keys = append(keys, string(appendString(nil, f.name))+":")
			}
		})
		buf = append(buf, '{')
		first := true
		for i, f := range fs {
			fp := unsafe.Add(p, f.offset)
			if f.omitempty && f.empty(fp) {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, keys[i]...)
			buf = f.enc(buf, fp)
		}
		return append(buf, '}')
	}
}

// emptyTest is encoding/json's omitempty test for values of t: no
// elements for arrays, maps, slices and strings; the zero value for
// numbers, bools, pointers and interfaces; a struct is never empty.
func emptyTest(t reflect.Type) func(unsafe.Pointer) bool {
	switch t.Kind() {
	case reflect.String:
		return func(p unsafe.Pointer) bool { return len(*(*string)(p)) == 0 }
	case reflect.Slice:
		return func(p unsafe.Pointer) bool { return (*sliceHeader)(p).len == 0 }
	case reflect.Array:
		n := t.Len()
		return func(unsafe.Pointer) bool { return n == 0 }
	case reflect.Map:
		return func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().Len() == 0 }
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return zeroTest(t)
	}
	return func(unsafe.Pointer) bool { return false }
}

// zeroTest is reflect.Value.IsZero for values of t. The kinds whose zero
// value is all zero bytes, and which hold no padding, are tested so;
// the rest through reflect.
func zeroTest(t reflect.Type) func(unsafe.Pointer) bool {
	switch t.Kind() {
	case reflect.String:
		return func(p unsafe.Pointer) bool { return len(*(*string)(p)) == 0 }
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return func(p unsafe.Pointer) bool { return *(*unsafe.Pointer)(p) == nil }
	case reflect.Interface:
		return func(p unsafe.Pointer) bool { return *(*[2]unsafe.Pointer)(p) == [2]unsafe.Pointer{} }
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		size := t.Size()
		return func(p unsafe.Pointer) bool {
			for _, b := range unsafe.Slice((*byte)(p), size) {
				if b != 0 {
					return false
				}
			}
			return true
		}
	}
	return func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsZero() }
}

// appendIntAt and appendUintAt write the integer of type T at p.
func appendIntAt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](buf []byte, p unsafe.Pointer) []byte {
	return strconv.AppendInt(buf, int64(*(*T)(p)), 10)
}

func appendUintAt[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr](buf []byte, p unsafe.Pointer) []byte {
	return strconv.AppendUint(buf, uint64(*(*T)(p)), 10)
}

// appendFloat writes f as encoding/json does: the shortest form, in
// exponent form only below 1e-6 or from 1e21 on, with "e-07" as "e-7". A NaN
// or an infinity, which encoding/json refuses, is null, as withJSON writes
// a value it refuses.
func appendFloat(buf []byte, f float64, bits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(buf, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	buf = strconv.AppendFloat(buf, f, format, -1, bits)
	if n := len(buf); format == 'e' && n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
		buf[n-2] = buf[n-1]
		buf = buf[:n-1]
	}
	return buf
}

func encodeTime(buf []byte, p unsafe.Pointer) []byte {
	t := (*time.Time)(p)
	if y := t.Year(); y < 0 || y >= 10000 {
		return withJSON(timeType)(buf, p) // encoding/json's error case
	}
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, '"')
}

// encodeStringMap writes a map keyed by plain strings, its keys sorted as
// encoding/json sorts them, each value by its own type's encoder.
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
		e := v.MapIndex(reflect.ValueOf(k))
		if e.Type() == stringType {
			buf = appendString(buf, e.String())
		} else {
			buf = encodeValue(buf, e)
		}
	}
	return append(buf, '}')
}

// withJSON is the way out for kinds this encoder does not know: the value
// at p, of type t, through encoding/json.
func withJSON(t reflect.Type) encodeFn {
	return func(buf []byte, p unsafe.Pointer) []byte {
		data, err := json.Marshal(reflect.NewAt(t, p).Elem().Interface())
		if err != nil {
			// Only types without a JSON form fail; none is used here.
			return append(buf, "null"...)
		}
		return append(buf, data...)
	}
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
