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
