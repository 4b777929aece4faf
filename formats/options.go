package formats

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Options reads a format's options as the spec wrote them, and remembers
// which were used, so that Finish can refuse the ones that were not.
type Options struct {
	format string
	raw    map[string]any
	valid  []string
	err    error
}

// NewOptions starts reading opts for the named format.
func NewOptions(format string, opts map[string]any) *Options {
	return &Options{format: format, raw: opts}
}

func (o *Options) fail(key, want string, v any) {
	if o.err == nil {
		o.err = fmt.Errorf("%w: %s option %q must be %s, not %v", ErrBadOption, o.format, key, want, v)
	}
}

// String reads a string option; oneOf, if given, lists the allowed values.
func (o *Options) String(key, def string, oneOf ...string) string {
	o.valid = append(o.valid, key)
	v, ok := o.raw[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.fail(key, "a string", v)
		return def
	}
	if len(oneOf) > 0 && !slices.Contains(oneOf, s) {
		o.fail(key, "one of "+strings.Join(oneOf, ", "), s)
		return def
	}
	return s
}

// Int reads an integer option within [lo, hi].
func (o *Options) Int(key string, def, lo, hi int64) int64 {
	o.valid = append(o.valid, key)
	v, ok := o.raw[key]
	if !ok || v == nil {
		return def
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt64 {
			o.fail(key, "an integer", v)
			return def
		}
		n = int64(x)
	case float64:
		if x != math.Trunc(x) {
			o.fail(key, "an integer", v)
			return def
		}
		n = int64(x)
	default:
		o.fail(key, "an integer", v)
		return def
	}
	if n < lo || n > hi {
		o.fail(key, fmt.Sprintf("between %d and %d", lo, hi), n)
		return def
	}
	return n
}

// Strings reads a list of strings.
func (o *Options) Strings(key string) []string {
	o.valid = append(o.valid, key)
	v, ok := o.raw[key]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		o.fail(key, "a list of strings", v)
		return nil
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			o.fail(key, "a list of strings", v)
			return nil
		}
		out = append(out, s)
	}
	return out
}

// Finish reports the first bad option, or an option no reader asked for.
func (o *Options) Finish() error {
	if o.err != nil {
		return o.err
	}
	keys := make([]string, 0, len(o.raw))
	for k := range o.raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(o.valid, k) {
			return UnknownOption(o.format, k, o.valid)
		}
	}
	return nil
}

// Columns reads one column name or a list of them.
func (o *Options) Columns(key string) []string {
	if s, ok := o.raw[key].(string); ok {
		o.valid = append(o.valid, key)
		if s == "" {
			o.fail(key, "a column name or a list of them", `""`)
			return nil
		}
		return []string{s}
	}
	return o.Strings(key)
}

// Bool reads a boolean option.
func (o *Options) Bool(key string, def bool) bool {
	o.valid = append(o.valid, key)
	v, ok := o.raw[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		o.fail(key, "true or false", v)
		return def
	}
	return b
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// Size reads a byte size: an integer, or a string such as "64MiB" or "4KB",
// within [lo, hi].
func (o *Options) Size(key string, def, lo, hi int64) int64 {
	v, ok := o.raw[key]
	s, isString := v.(string)
	if !ok || !isString {
		return o.Int(key, def, lo, hi)
	}
	o.valid = append(o.valid, key)
	n, err := ParseSize(s)
	if err != nil {
		o.fail(key, "a size such as 65536, \"64KiB\", \"16MiB\" or \"1GiB\"", s)
		return def
	}
	if n < lo || n > hi {
		o.fail(key, fmt.Sprintf("between %d and %d bytes", lo, hi), s)
		return def
	}
	return n
}

// FormatSize shows a byte size for a person: "812 B", "1.5 MiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseSize reads a byte size such as "65536", "64KiB", "16MiB", "1GiB"
// or "4KB".
func ParseSize(s string) (int64, error) {
	str := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(str, "%d", &n); err != nil || fmt.Sprint(n) != str || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size such as 65536, \"64KiB\", \"512MiB\" or \"2GiB\"", s)
	}
	return n * mult, nil
}

// Has reports whether the spec set key.
func (o *Options) Has(key string) bool {
	v, ok := o.raw[key]
	return ok && v != nil
}

// StringMap reads a map of strings to strings, such as {old: new}.
func (o *Options) StringMap(key string) map[string]string {
	o.valid = append(o.valid, key)
	v, ok := o.raw[key]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		o.fail(key, "a map of strings to strings", v)
		return nil
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok || s == "" {
			o.fail(key, "a map of strings to strings", v)
			return nil
		}
		out[k] = s
	}
	return out
}
