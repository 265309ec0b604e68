// Package secret keeps configuration secrets out of everything the plugin
// prints: passwords, secret keys, session tokens, external IDs, private
// keys.
//
// Two pieces work together. String is the type of every secret option the
// plugin's own configuration structs declare: it prints, marshals to JSON
// and logs with slog as Redacted, whatever the verb, wherever fmt calls its
// methods. Format prints a whole configuration struct with its secrets
// redacted, including those held in plain strings of types the plugin does
// not own (the communicator's passwords and private key, Packer's user
// variables); the configuration structs implement fmt.Formatter,
// fmt.Stringer and fmt.GoStringer with it.
//
// String alone is not enough: fmt calls no method while it prints a value
// in its error notation, as it does for a pointer to a struct printed with
// a verb other than %v (%s of a *Config inside another struct), so the
// fields of such a struct print as plain strings. Every struct that holds
// a String, or holds a struct that does, implements fmt.Formatter with
// Format.
//
// One path stays open, and no type can close it: fmt prints a value
// reached through an unexported struct field by reflection, without
// calling any method on it, down to its strings; a String there prints as
// the plain string it is. A pointer in an unexported field prints as its
// address with %v, but other verbs print what it points to the same way.
// Hold configurations in exported fields, and do not print structs that
// hold one in an unexported field.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Redacted is what a secret prints as, unless it is empty.
const Redacted = "<redacted>"

// String is a secret configuration value. Its underlying type is string, so
// that mapstructure decodes it and packer-sdc declares it a string
// attribute exactly as for a plain string. Use Reveal (or a conversion to
// string) where the value itself is needed.
//
// A String prints as Redacted, or as "" when empty, with every fmt verb; it
// marshals to JSON the same way, so a marshalled configuration cannot be
// unmarshalled back with its secrets.
type String string

// Reveal returns the secret value.
func (s String) Reveal() string { return string(s) }

// String returns Redacted, or "" for an empty secret.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString returns String quoted, so that %#v redacts too.
func (s String) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter: every verb prints the redacted form.
func (s String) Format(f fmt.State, verb rune) {
	formatText(f, verb, "secret.String", s.String(), s.GoString())
}

// MarshalJSON marshals the redacted form.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue implements slog.LogValuer with the redacted form.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Format prints v, a struct or a pointer to one, for verb: its exported
// fields by name, as fmt's %+v would, with every secret redacted, and with
// the type's name before them for %#v. Unexported fields are left out:
// they hold the component's internal state, not configuration. A field is
// secret when its type is String, or when its name ends in "Password" or
// "PrivateKey" or is "PackerUserVars" (whose names are shown, not values):
// that is how the communicator and Packer declare theirs. Nested structs
// are described the same way unless they print themselves (fmt.Formatter or
// fmt.Stringer), which the plugin's configuration blocks do with Format.
//
// Configuration types implement fmt.Formatter with it:
//
//	func (c Config) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }
//
// A type that embeds such a type must implement the methods itself, or
// the embedded type's methods, promoted, print only the embedded part.
func Format(f fmt.State, verb rune, v any) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	var b strings.Builder
	describe(&b, rv, true)
	body := b.String()
	formatText(f, verb, rv.Type().String(), body, rv.Type().String()+body)
}

// Describe returns what Format prints for %+v.
func Describe(v any) string { return fmt.Sprintf("%+v", formatter{v}) }

// GoString returns what Format prints for %#v.
func GoString(v any) string { return fmt.Sprintf("%#v", formatter{v}) }

type formatter struct{ v any }

func (f formatter) Format(s fmt.State, verb rune) { Format(s, verb, f.v) }

// formatText prints text for verb: as a string for the verbs that print
// strings, goText for %#v, else in fmt's bad-verb notation around text.
func formatText(f fmt.State, verb rune, typ, text, goText string) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(goText))
			return
		}
		fmt.Fprintf(f, fmt.FormatString(f, 's'), text)
	case 's', 'q', 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), text)
	default:
		fmt.Fprintf(f, "%%!%c(%s=%s)", verb, typ, text)
	}
}

var stringType = reflect.TypeFor[String]()

// secretName reports whether a field of a type the plugin does not own
// holds a secret, by its name.
func secretName(name string) bool {
	return strings.HasSuffix(name, "Password") || strings.HasSuffix(name, "PrivateKey")
}

// describe writes v's description; top is set for the value Format was
// called with, which is described field by field even though its type
// prints itself.
func describe(b *strings.Builder, v reflect.Value, top bool) {
	switch {
	case !v.IsValid():
		b.WriteString("<nil>")
		return
	case v.Type() == stringType:
		b.WriteString(v.Interface().(String).String())
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if !top && printsItself(v) {
			fmt.Fprintf(b, "%+v", v.Interface())
			return
		}
		b.WriteByte('{')
		t := v.Type()
		sep := ""
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			b.WriteString(sep)
			sep = " "
			b.WriteString(sf.Name)
			b.WriteByte(':')
			fv := v.Field(i)
			switch {
			case sf.Name == "PackerUserVars" && fv.Kind() == reflect.Map:
				describeNames(b, fv)
			case secretName(sf.Name) && fv.Type() != stringType:
				if !fv.IsZero() {
					b.WriteString(Redacted)
				}
			default:
				describe(b, fv, false)
			}
		}
		b.WriteByte('}')
	case reflect.Pointer:
		switch {
		case v.IsNil():
			b.WriteString("<nil>")
		case printsItself(v):
			fmt.Fprintf(b, "%+v", v.Interface())
		default:
			describe(b, v.Elem(), false)
		}
	default:
		fmt.Fprintf(b, "%+v", v.Interface())
	}
}

// describeNames writes the keys of a map of strings with their values
// redacted.
func describeNames(b *strings.Builder, m reflect.Value) {
	names := make([]string, 0, m.Len())
	for _, k := range m.MapKeys() {
		names = append(names, fmt.Sprint(k.Interface()))
	}
	sort.Strings(names)
	b.WriteString("map[")
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n + ":" + Redacted)
	}
	b.WriteByte(']')
}

// printsItself reports whether fmt would call a method of v to print it.
func printsItself(v reflect.Value) bool {
	switch v.Interface().(type) {
	case fmt.Formatter, fmt.Stringer, fmt.GoStringer:
		return true
	}
	return false
}
