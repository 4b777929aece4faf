package inputs

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lockstep-data/lockstep/formats"
)

// Duplicate is the error for two records with one key under the `error`
// policy: it names the key, both records and their files.
func (f *Files) Duplicate(format, key string, ord1, ord2 int64) *formats.DuplicateKeyError {
	return &formats.DuplicateKeyError{Format: format, Key: key, File1: f.Name(ord1), File2: f.Name(ord2)}
}

// Quote shows a key for a message: as a string where it is valid UTF-8
// text, else as hex.
func Quote(key []byte) string {
	if utf8.Valid(key) && !strings.ContainsFunc(string(key), func(r rune) bool { return r < 0x20 }) {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("0x%x", key)
}

// OutOfOrder is the error for input declared sorted (sorted: true) whose key
// goes down: it names both keys and records and says what to do.
func (f *Files) OutOfOrder(format, key, prev string, ord, prevOrd int64) error {
	return fmt.Errorf("%w: %s: input declared sorted (sorted: true) is not: key %s in %s comes after %s in %s; sort it upstream, or drop sorted: true to let lockstep sort",
		formats.ErrBadInput, format, key, f.Name(ord), prev, f.Name(prevOrd))
}
