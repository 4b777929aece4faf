package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/cockroachdb/pebble/sstable"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
	"github.com/lockstep-data/lockstep/formats/internal/sst"
)

// Open reads an SSTable's footer, index and properties.
func (Format) Open(r io.ReaderAt, size int64) (rd formats.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("kv: not a readable SSTable: %v", p)
		}
	}()
	t, err := sst.Open(r, size)
	if err != nil {
		return nil, fmt.Errorf("kv: not a readable SSTable: %w", err)
	}
	k := &reader{t: t}
	up := t.Properties.UserProperties
	k.names = strings.Split(up[propKeyColumns], ",")
	if k.kinds, err = keyenc.ParseKinds(up[propKeyKinds]); err != nil || len(k.kinds) != len(k.names) {
		k.kinds = nil // a table lockstep did not write: keys are shown as bytes
	}
	k.prefix = []byte(up[propKeyPrefix])
	k.value = up[propValue]
	return k, nil
}

type reader struct {
	t      *sstable.Reader
	names  []string
	kinds  []keyenc.Kind
	prefix []byte
	value  string
}

func (r *reader) Rows() int64 { return int64(r.t.Properties.NumEntries) }

func (r *reader) Describe() map[string]any {
	p := r.t.Properties
	return map[string]any{
		"rows": p.NumEntries, "key": r.names, "key_prefix": string(r.prefix), "value": r.value,
		"compression": p.CompressionName, "filter": p.FilterPolicyName,
		"data_bytes": p.DataSize, "index_bytes": p.IndexSize, "filter_bytes": p.FilterSize,
	}
}

// Query looks up a key (one argument per key column), or with "prefix:P"
// the keys whose first string column starts with P, or with no arguments
// lists the first keys.
func (r *reader) Query(ctx context.Context, args []string, limit int) (res *formats.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("kv: corrupt table: %v", p)
		}
	}()
	var lower, upper []byte
	exact := false
	switch {
	case len(args) == 1 && strings.HasPrefix(args[0], "prefix:"):
		if len(r.kinds) == 0 || (r.kinds[0].Class != 's' && r.kinds[0].Class != 'x') {
			return nil, fmt.Errorf("%w: kv: prefix: needs a table whose first key column is a string", formats.ErrBadQuery)
		}
		p := strings.TrimPrefix(args[0], "prefix:")
		lower = append(bytes.Clone(r.prefix), p...)
		upper = prefixEnd(lower)
	case len(args) > 0:
		if r.kinds == nil {
			return nil, fmt.Errorf("%w: kv: this table carries no lockstep key description", formats.ErrBadQuery)
		}
		key, err := keyenc.Parse(args, r.kinds)
		if err != nil {
			return nil, fmt.Errorf("%w: kv: key (%s): %v", formats.ErrBadQuery, strings.Join(r.names, ", "), err)
		}
		lower, exact = append(bytes.Clone(r.prefix), key...), true
	default:
		lower = bytes.Clone(r.prefix)
		upper = prefixEnd(lower)
	}
	it, err := r.t.NewIter(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	defer it.Close()
	res = &formats.Result{Columns: append(append([]string{}, r.names...), "value")}
	for k, lv := it.SeekGE(lower, 0); k != nil && len(res.Rows) < limit; k, lv = it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		uk := k.UserKey
		if exact && !bytes.Equal(uk, lower) || upper != nil && bytes.Compare(uk, upper) >= 0 {
			break
		}
		v, _, err := lv.Value(nil)
		if err != nil {
			return nil, fmt.Errorf("kv: %w", err)
		}
		row, err := r.row(uk, v)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
		if exact {
			break
		}
	}
	return res, it.Error()
}

// prefixEnd is the smallest key after every key starting with p, or nil.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func (r *reader) row(key, val []byte) ([]any, error) {
	var cols []any
	if k, err := keyenc.Decode(bytes.TrimPrefix(key, r.prefix), r.kinds); err == nil && r.kinds != nil {
		cols = k
	} else {
		cols = make([]any, len(r.names))
		cols[0] = fmt.Sprintf("0x%x", key)
	}
	var v any
	switch r.value {
	case "json":
		if err := json.Unmarshal(val, &v); err != nil {
			return nil, fmt.Errorf("kv: value of key %x is not JSON: %w", key, err)
		}
	case "msgpack":
		if err := msgpack.Unmarshal(val, &v); err != nil {
			return nil, fmt.Errorf("kv: value of key %x is not msgpack: %w", key, err)
		}
	default:
		v = string(val)
	}
	return append(cols, v), nil
}

// Check verifies every block's checksum and that keys strictly increase.
func (r *reader) Check(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kv: corrupt table: %v", p)
		}
	}()
	if err := r.t.ValidateBlockChecksums(); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	it, err := r.t.NewIter(nil, nil)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	defer it.Close()
	var prev []byte
	var n uint64
	for k, lv := it.First(); k != nil; k, lv = it.Next() {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if n > 0 && bytes.Compare(k.UserKey, prev) <= 0 {
			return fmt.Errorf("kv: key %x does not follow %x", k.UserKey, prev)
		}
		if _, _, err := lv.Value(nil); err != nil {
			return fmt.Errorf("kv: value of key %x: %w", k.UserKey, err)
		}
		prev = append(prev[:0], k.UserKey...)
		n++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	if n != r.t.Properties.NumEntries {
		return fmt.Errorf("kv: %d entries, and the properties say %d", n, r.t.Properties.NumEntries)
	}
	return nil
}

func (r *reader) Close() error { return r.t.Close() }
