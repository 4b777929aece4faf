package mmdb

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/lockstep-data/lockstep/formats"
)

// MaxSize is the largest database Open reads into memory.
const MaxSize = 8 << 30

// Open reads the database into memory and checks its metadata.
func (Format) Open(r io.ReaderAt, size int64) (rd formats.Reader, err error) {
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("mmdb: %d bytes is more than the %d this reader loads", size, int64(MaxSize))
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("mmdb: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("mmdb: not a readable MaxMind DB: %v", p)
		}
	}()
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("mmdb: not a readable MaxMind DB: %w", err)
	}
	return &reader{db: db, networks: -1}, nil
}

type reader struct {
	db       *maxminddb.Reader
	networks int64
}

// Rows counts the networks that hold data (IPv4 aliases not counted again).
func (r *reader) Rows() int64 {
	if r.networks < 0 {
		r.networks = 0
		for res := range r.db.Networks() {
			if res.Err() != nil {
				break
			}
			r.networks++
		}
	}
	return r.networks
}

func (r *reader) Describe() map[string]any {
	m := r.db.Metadata
	return map[string]any{
		"networks": r.Rows(), "database_type": m.DatabaseType, "description": m.Description,
		"languages": m.Languages, "ip_version": m.IPVersion, "record_size": m.RecordSize,
		"node_count": m.NodeCount, "build_time": m.BuildTime().UTC().Format(time.RFC3339),
	}
}

// Query looks up each IP argument; with none it lists the first networks.
func (r *reader) Query(ctx context.Context, args []string, limit int) (res *formats.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("mmdb: corrupt database: %v", p)
		}
	}()
	res = &formats.Result{Columns: []string{"ip", "network", "record"}}
	if len(args) == 0 {
		for n := range r.db.Networks() {
			if len(res.Rows) >= limit {
				break
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("mmdb: %s: %w", n.Prefix(), err)
			}
			res.Rows = append(res.Rows, []any{n.Prefix().Addr().String(), n.Prefix().String(), jsonable(v)})
		}
		return res, nil
	}
	for _, a := range args {
		if len(res.Rows) >= limit {
			break
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: mmdb: %q is not an IP address", formats.ErrBadQuery, a)
		}
		l := r.db.Lookup(ip)
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("mmdb: %s: %w", ip, err)
		}
		if !l.Found() {
			res.Rows = append(res.Rows, []any{ip.String(), nil, nil})
			continue
		}
		var v any
		if err := l.Decode(&v); err != nil {
			return nil, fmt.Errorf("mmdb: %s: %w", ip, err)
		}
		res.Rows = append(res.Rows, []any{ip.String(), l.Prefix().String(), jsonable(v)})
	}
	return res, nil
}

// jsonable turns decoded values into what encoding/json prints.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	case []byte:
		return fmt.Sprintf("%x", x)
	}
	return v
}

// Check verifies the search tree, the data section and the metadata.
func (r *reader) Check(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mmdb: corrupt database: %v", p)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.db.Verify(); err != nil {
		return fmt.Errorf("mmdb: %w", err)
	}
	return nil
}

func (r *reader) Close() error { return r.db.Close() }
