// Package mmdb is the `mmdb` format: a MaxMind DB written by mmdbwriter,
// mapping IP networks to records, read by libmaxminddb (mmdblookup), the
// MaxMind readers and maxminddb-golang.
//
// Networks come from a CIDR column or from start and end IP columns. In an
// IPv6 database (the default) IPv4 networks live at ::a.b.c.d/96+n and are
// also reachable through ::ffff:0:0/96 and 2002::/16, as in MaxMind's own
// databases. Records are maps of the chosen columns (see record.go for the
// type mapping). mmdbwriter builds the whole tree in memory: see
// docs/formats.md for the measured cost per network.
package mmdb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"go4.org/netipx"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/inputs"
	"github.com/lockstep-data/lockstep/formats/internal/valenc"
)

// Format is the `mmdb` format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Name:      "mmdb",
		Version:   "maxmind-db/2.0",
		MediaType: "application/vnd.maxmind.mmdb",
		Ext:       ".mmdb",
	}
}

type config struct {
	network, startIP, endIP string
	columns                 []string
	dbType, description     string
	languages               []string
	epoch                   int64
	epochColumn             string
	ipVersion, recordSize   int64
	overlaps                string
	reserved, aliasing      bool
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("mmdb", opts)
	c := &config{
		network:     o.String("network", ""),
		startIP:     o.String("start_ip", ""),
		endIP:       o.String("end_ip", ""),
		columns:     o.Columns("record_columns"),
		dbType:      o.String("database_type", "lockstep"),
		description: o.String("description", ""),
		languages:   o.Strings("languages"),
		epoch:       o.Int("build_epoch", 0, minEpoch, maxEpoch),
		epochColumn: o.String("build_epoch_column", ""),
		ipVersion:   o.Int("ip_version", 6, 4, 6),
		recordSize:  o.Int("record_size", 28, 24, 32),
		overlaps:    o.String("overlaps", "error", "error", "last"),
		reserved:    o.Bool("include_reserved", false),
		aliasing:    o.Bool("ipv4_aliasing", true),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	switch {
	case (c.network == "") == (c.startIP == "" && c.endIP == ""):
		return nil, fmt.Errorf("%w: mmdb needs either network (a CIDR column) or start_ip and end_ip (IP columns)", formats.ErrBadOption)
	case c.network == "" && (c.startIP == "" || c.endIP == ""):
		return nil, fmt.Errorf("%w: mmdb needs both start_ip and end_ip", formats.ErrBadOption)
	case c.ipVersion == 5:
		return nil, fmt.Errorf("%w: mmdb option \"ip_version\" must be 4 or 6", formats.ErrBadOption)
	case c.recordSize%4 != 0:
		return nil, fmt.Errorf("%w: mmdb option \"record_size\" must be 24, 28 or 32", formats.ErrBadOption)
	case c.epoch == 0 && c.epochColumn == "":
		return nil, fmt.Errorf("%w: mmdb needs build_epoch_column (a timestamp or integer column of seconds; the largest value is the build time) or build_epoch (fixed Unix seconds): the build time comes from the input, never the clock", formats.ErrBadOption)
	}
	if c.description == "" {
		c.description = "lockstep " + c.dbType
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{
		"database_type": c.dbType, "description": c.description, "ip_version": c.ipVersion,
		"record_size": c.recordSize, "overlaps": c.overlaps, "include_reserved": c.reserved,
		"ipv4_aliasing": c.aliasing,
	}
	for k, v := range map[string]string{"network": c.network, "start_ip": c.startIP, "end_ip": c.endIP, "build_epoch_column": c.epochColumn} {
		if v != "" {
			m[k] = v
		}
	}
	if c.epoch != 0 {
		m["build_epoch"] = c.epoch
	}
	if c.columns != nil {
		m["record_columns"] = c.columns
	}
	if c.languages != nil {
		m["languages"] = c.languages
	}
	return m
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	col := func(name, role string) (int, error) {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return 0, fmt.Errorf("%w: mmdb %s: no column %q in the input", formats.ErrBadInput, role, name)
		}
		return is[0], nil
	}
	wr := &writer{out: w, cfg: c, epoch: c.epoch, netCol: -1, epochCol: -1}
	var skip []string
	for _, p := range [][2]string{{c.network, "network"}, {c.startIP, "start_ip"}, {c.endIP, "end_ip"}} {
		if p[0] == "" {
			continue
		}
		i, err := col(p[0], p[1])
		if err != nil {
			return nil, err
		}
		if id := schema.Field(i).Type.ID(); id != arrow.STRING && id != arrow.LARGE_STRING {
			return nil, fmt.Errorf("%w: mmdb %s column %q is %s; it must be a string such as \"203.0.113.0/24\" or \"2001:db8::1\"", formats.ErrBadInput, p[1], p[0], schema.Field(i).Type)
		}
		switch p[1] {
		case "network":
			wr.netCol = i
		case "start_ip":
			wr.startCol = i
		default:
			wr.endCol = i
		}
		skip = append(skip, p[0])
	}
	if c.epochColumn != "" {
		i, err := col(c.epochColumn, "build_epoch_column")
		if err != nil {
			return nil, err
		}
		if _, ok := epochSeconds(schema.Field(i).Type, nil, 0); !ok {
			return nil, fmt.Errorf("%w: mmdb build_epoch_column %q is %s; it must be a timestamp, date or integer (Unix seconds)", formats.ErrBadInput, c.epochColumn, schema.Field(i).Type)
		}
		wr.epochCol = i
	}
	names := c.columns
	if names == nil {
		for _, f := range schema.Fields() {
			if !slices.Contains(skip, f.Name) {
				names = append(names, f.Name)
			}
		}
	}
	for _, name := range names {
		i, err := col(name, "record_columns")
		if err != nil {
			return nil, err
		}
		if !valenc.Supported(schema.Field(i).Type) {
			return nil, fmt.Errorf("%w: mmdb: column %q has type %s, which has no MaxMind DB mapping; leave it out of record_columns", formats.ErrBadInput, name, schema.Field(i).Type)
		}
		wr.recCols = append(wr.recCols, i)
		wr.recNames = append(wr.recNames, mmdbtype.String(name))
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		BuildEpoch:              epochPlaceholder, // patched in Close: see epoch.go
		DisableMetadataPointers: true,
		DatabaseType:            c.dbType,
		Description:             map[string]string{"en": c.description},
		Languages:               c.languages,
		IPVersion:               int(c.ipVersion),
		RecordSize:              int(c.recordSize),
		IncludeReservedNetworks: c.reserved,
		DisableIPv4Aliasing:     !c.aliasing,
	})
	if err != nil {
		return nil, fmt.Errorf("mmdb: %w", err)
	}
	wr.tree = tree
	return wr, nil
}

type writer struct {
	out                      io.Writer
	cfg                      *config
	tree                     *mmdbwriter.Tree
	netCol, startCol, endCol int
	epochCol                 int
	epoch                    int64
	recCols                  []int
	recNames                 []mmdbtype.String
	files                    inputs.Files
	rows                     int64
}

func (w *writer) StartFile(path string) { w.files.Start(w.rows, path) }

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	for i := range int(rec.NumRows()) {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := w.row(rec, i); err != nil {
			return fmt.Errorf("%w: mmdb: %s: %v", formats.ErrBadInput, w.files.Name(w.rows), err)
		}
		w.rows++
	}
	return nil
}

func (w *writer) row(rec arrow.RecordBatch, i int) error {
	if w.epochCol >= 0 {
		if s, ok := epochSeconds(rec.Column(w.epochCol).DataType(), rec.Column(w.epochCol), i); ok && s > w.epoch {
			w.epoch = s
		}
	}
	m := mmdbtype.Map{}
	for j, c := range w.recCols {
		v, err := toMMDB(valenc.Value(rec.Column(c), i), rec.Column(c).DataType())
		if err != nil {
			return fmt.Errorf("column %q: %v", w.recNames[j], err)
		}
		if v != nil {
			m[w.recNames[j]] = v
		}
	}
	var prefixes []netip.Prefix
	if w.netCol >= 0 {
		s, ok := str(rec.Column(w.netCol), i)
		if !ok {
			return fmt.Errorf("network column %q is null", w.cfg.network)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("network %q: %v", s, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Masked() != p {
			return fmt.Errorf("network %q has bits set past its prefix length; did you mean %s?", s, p.Masked())
		}
		prefixes = []netip.Prefix{p}
	} else {
		a, ok1 := str(rec.Column(w.startCol), i)
		b, ok2 := str(rec.Column(w.endCol), i)
		if !ok1 || !ok2 {
			return fmt.Errorf("start_ip or end_ip is null")
		}
		start, err1 := netip.ParseAddr(a)
		end, err2 := netip.ParseAddr(b)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("range %q to %q: not IP addresses", a, b)
		}
		r := netipx.IPRangeFrom(start.Unmap(), end.Unmap())
		if !r.IsValid() {
			return fmt.Errorf("range %q to %q: the start must not be after the end, and both must be IPv4 or both IPv6", a, b)
		}
		prefixes = r.Prefixes()
	}
	for _, p := range prefixes {
		if p.Addr().Is6() && w.cfg.ipVersion == 4 {
			return fmt.Errorf("network %s is IPv6, and ip_version is 4", p)
		}
		if err := w.insert(p, m); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) insert(p netip.Prefix, value mmdbtype.Map) error {
	var overlap mmdbtype.DataType
	err := w.tree.InsertFunc(netipx.PrefixIPNet(p), func(existing mmdbtype.DataType) (mmdbtype.DataType, error) {
		if existing != nil && w.cfg.overlaps == "error" {
			if overlap == nil {
				overlap = existing
			}
			return existing, nil
		}
		return value, nil
	})
	if err != nil {
		return fmt.Errorf("network %s: %v (set include_reserved: true to keep private and reserved ranges)", p, err)
	}
	if overlap != nil {
		return fmt.Errorf("network %s overlaps %s, inserted before; fix the input, or set overlaps: last to let later rows win", p, w.earlier(p, overlap))
	}
	return nil
}

// earlier finds a network holding data inside or around p, for the overlap
// error, by walking p's address range region by region for the record old.
// (The failed insert has filled p's empty parts with the new record.)
func (w *writer) earlier(p netip.Prefix, old mmdbtype.DataType) string {
	r := netipx.RangeOfPrefix(p)
	ip := r.From()
	for n := 0; n < 1<<16 && ip.IsValid() && r.Contains(ip); n++ {
		ipn, v := w.tree.Get(net.IP(ip.AsSlice()))
		ones, bits := ipn.Mask.Size()
		var got netip.Prefix
		switch {
		case bits == 32: // an IPv4 tree answers in IPv4 terms
			got = netip.PrefixFrom(netip.AddrFrom4([4]byte(ipn.IP.To4())), ones)
		case ip.Is4():
			if ones < 96 {
				return "an earlier network"
			}
			got = netip.PrefixFrom(netip.AddrFrom16([16]byte(ipn.IP.To16())).Unmap(), ones-96)
		default:
			got = netip.PrefixFrom(netip.AddrFrom16([16]byte(ipn.IP.To16())), ones)
		}
		if v != nil && v.Equal(old) {
			return got.Masked().String()
		}
		ip = netipx.PrefixLastIP(got.Masked()).Next()
	}
	return "an earlier network"
}

func str(a arrow.Array, i int) (string, bool) {
	if a.IsNull(i) {
		return "", false
	}
	switch s := a.(type) {
	case *array.String:
		return s.Value(i), true
	case *array.LargeString:
		return s.Value(i), true
	}
	return "", false
}

func (w *writer) Close(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.epoch == 0 {
		w.epoch = minEpoch // an empty input with a build_epoch_column
	}
	if w.epoch < minEpoch || w.epoch > maxEpoch {
		return fmt.Errorf("%w: mmdb: build epoch %d is not between %d and %d (Unix seconds, 1970-07-14 to 2106)", formats.ErrBadInput, w.epoch, minEpoch, maxEpoch)
	}
	tw := &tailWriter{w: w.out}
	if _, err := w.tree.WriteTo(tw); err != nil {
		return fmt.Errorf("mmdb: %w", err)
	}
	return tw.finish(w.epoch)
}

func (w *writer) Abort() { w.tree = nil }
