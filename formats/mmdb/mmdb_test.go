package mmdb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/mmdb"
)

var conformance = formatstest.Case{
	Format:  mmdb.Format{},
	Options: map[string]any{"network": "network", "build_epoch": 1700000000, "database_type": "lockstep-test", "languages": []any{"en"}},
}

func TestConformance(t *testing.T) { formatstest.Run(t, conformance) }

func TestGolden(t *testing.T) { formatstest.Golden(t, conformance) }

func open(t *testing.T, data []byte) *maxminddb.Reader {
	t.Helper()
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Verify(); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestLookupAndTypes(t *testing.T) {
	data := formatstest.Write(t, mmdb.Format{}, conformance.Options, formatstest.Shuffled(2000), 300)
	db := open(t, data)
	if db.Metadata.BuildEpoch != 1700000000 || db.Metadata.DatabaseType != "lockstep-test" || db.Metadata.IPVersion != 6 {
		t.Fatalf("metadata %+v", db.Metadata)
	}
	type rec struct {
		ID    uint64         `maxminddb:"id"`
		Key   string         `maxminddb:"key"`
		Name  *string        `maxminddb:"name"`
		Score *float64       `maxminddb:"score"`
		Tags  []string       `maxminddb:"tags"`
		Info  map[string]any `maxminddb:"info"`
	}
	for _, id := range []int64{0, 2, 11, 1000, 1001, 1999} {
		p := netip.MustParsePrefix(formatstest.Network(id))
		probes := []netip.Addr{p.Addr(), p.Addr().Next()}
		if p.Addr().Is4() {
			probes = append(probes, netip.AddrFrom16(p.Addr().As16())) // ::ffff:a.b.c.d
			probes = append(probes, netip.MustParseAddr(fmt.Sprintf("2002:%02x%02x:%02x%02x::1", p.Addr().As4()[0], p.Addr().As4()[1], p.Addr().As4()[2], p.Addr().As4()[3])))
		}
		for _, ip := range probes {
			var r rec
			res := db.Lookup(ip)
			if err := res.Decode(&r); err != nil || !res.Found() {
				t.Fatalf("%s: %v, found %v", ip, err, res.Found())
			}
			if int64(r.ID) != id || r.Key != formatstest.Key(id) {
				t.Fatalf("%s: %+v, want id %d", ip, r, id)
			}
			if (id%7 == 3) != (r.Name == nil) || (id%5 == 1) != (r.Score == nil) {
				t.Fatalf("%s: nulls wrong in %+v", ip, r)
			}
			if id%9 != 4 && fmt.Sprint(r.Info["a"]) != fmt.Sprint(-id) {
				t.Fatalf("%s: info %#v", ip, r.Info)
			}
		}
	}
	if res := db.Lookup(netip.MustParseAddr("21.0.0.1")); res.Found() {
		t.Fatal("21.0.0.1 is in no network, and was found")
	}
}

func ranges(t *testing.T, opts map[string]any, rows [][3]string) ([]byte, error) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "start", Type: arrow.BinaryTypes.String}, {Name: "end", Type: arrow.BinaryTypes.String},
		{Name: "city", Type: arrow.BinaryTypes.String},
		{Name: "seen", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	cfg, err := mmdb.Format{}.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i, r := range rows {
		w.(formats.FileStarter).StartFile(fmt.Sprintf("file:///ip/part-%d.parquet", i))
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		b.Field(0).(*array.StringBuilder).Append(r[0])
		b.Field(1).(*array.StringBuilder).Append(r[1])
		b.Field(2).(*array.StringBuilder).Append(r[2])
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Date(2024, 5, 1+i, 0, 0, 0, 0, time.UTC).UnixMicro()))
		rec := b.NewRecordBatch()
		err := w.Write(context.Background(), rec)
		rec.Release()
		if err != nil {
			return nil, err
		}
	}
	if err := w.Close(context.Background()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func TestRangesEpochAndOverlaps(t *testing.T) {
	opts := map[string]any{"start_ip": "start", "end_ip": "end", "record_columns": "city", "build_epoch_column": "seen"}
	rows := [][3]string{
		{"81.2.69.0", "81.2.70.17", "Lisbon"},
		{"2a02:1000::", "2a02:1000::ffff", "Oslo"},
		{"81.2.69.100", "81.2.69.100", "Zürich"},
	}
	_, err := ranges(t, opts, rows)
	if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "record 0 of file:///ip/part-2.parquet: network 81.2.69.100/32 overlaps 81.2.69.0/24") {
		t.Fatalf("overlap: %v", err)
	}
	opts["overlaps"] = "last"
	data, err := ranges(t, opts, rows)
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, data)
	if want := time.Date(2024, 5, 3, 0, 0, 0, 0, time.UTC).Unix(); int64(db.Metadata.BuildEpoch) != want {
		t.Fatalf("build epoch %d, want %d (the largest `seen`)", db.Metadata.BuildEpoch, want)
	}
	for ip, want := range map[string]string{"81.2.69.0": "Lisbon", "81.2.70.17": "Lisbon", "81.2.69.100": "Zürich", "2a02:1000::abcd": "Oslo", "81.2.70.18": "", "::ffff:81.2.69.1": "Lisbon"} {
		var r struct {
			City string `maxminddb:"city"`
		}
		if err := db.Lookup(netip.MustParseAddr(ip)).Decode(&r); err != nil || r.City != want {
			t.Errorf("%s: %q (%v), want %q", ip, r.City, err, want)
		}
	}
	// A larger network arriving after a smaller one names it too.
	delete(opts, "overlaps")
	_, err = ranges(t, opts, [][3]string{{"81.2.69.100", "81.2.69.100", "a"}, {"81.2.69.0", "81.2.69.255", "b"}})
	if err == nil || !strings.Contains(err.Error(), "81.2.69.0/24 overlaps 81.2.69.100/32") {
		t.Fatalf("overlap of a smaller, earlier network: %v", err)
	}
	// An IPv4-only database names the earlier network too.
	opts["ip_version"] = 4
	_, err = ranges(t, opts, [][3]string{{"20.0.0.0", "20.0.255.255", "a"}, {"20.0.1.0", "20.0.1.255", "b"}})
	if err == nil || !strings.Contains(err.Error(), "20.0.1.0/24 overlaps 20.0.0.0/16") {
		t.Fatalf("overlap in an IPv4 database: %v", err)
	}
	delete(opts, "ip_version")
	_, err = ranges(t, opts, [][3]string{{"10.0.0.0", "10.0.0.255", "private"}})
	if err == nil || !strings.Contains(err.Error(), "include_reserved") {
		t.Fatalf("reserved network: %v", err)
	}
}

// TestIntegerTypesByColumn: a field's MaxMind type follows its column's
// Arrow type, not each value, and an int64 outside int32 is an error.
func TestIntegerTypesByColumn(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "network", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint32},
	}, nil)
	write := func(ns []int64) ([]byte, error) {
		cfg, err := mmdb.Format{}.Configure(map[string]any{"network": "network", "build_epoch": 1700000000})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := cfg.NewWriter(&buf, schema)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i, n := range ns {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("81.2.%d.0/24", i))
			b.Field(1).(*array.Int64Builder).Append(n)
			b.Field(2).(*array.Uint32Builder).Append(uint32(i))
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		if err := w.Write(context.Background(), rec); err != nil {
			return nil, err
		}
		if err := w.Close(context.Background()); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	data, err := write([]int64{-1, 5, 70000})
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, data)
	for i := range 3 {
		var r map[string]any
		if err := db.Lookup(netip.MustParseAddr(fmt.Sprintf("81.2.%d.1", i))).Decode(&r); err != nil {
			t.Fatal(err)
		}
		// maxminddb-golang v2 decodes MaxMind int32 as int32 and every
		// unsigned type up to uint64 as uint64: 5 and 70000 used to come
		// back unsigned.
		if _, ok := r["n"].(int32); !ok {
			t.Errorf("row %d: n decoded as %T, want int32", i, r["n"])
		}
	}
	if _, err := write([]int64{1 << 40}); err == nil || !strings.Contains(err.Error(), "does not fit int32") || !strings.Contains(err.Error(), `"n"`) {
		t.Fatalf("an int64 outside int32: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"build_epoch": 1700000000}, "either network"},
		{map[string]any{"network": "n"}, "build_epoch_column"},
		{map[string]any{"network": "n", "build_epoch": 5}, "between"},
		{map[string]any{"network": "n", "build_epoch": 1700000000, "overlaps": "first"}, "one of error, last"},
		{map[string]any{"network": "n", "build_epoch": 1700000000, "ip_version": 5}, "4 or 6"},
	} {
		_, err := mmdb.Format{}.Configure(c.opts)
		if !errors.Is(err, formats.ErrBadOption) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.opts, err, c.want)
		}
	}
}

func TestHostileFile(t *testing.T) {
	data := formatstest.Write(t, mmdb.Format{}, conformance.Options, formatstest.Shuffled(500), 500)
	for _, bad := range [][]byte{nil, data[:len(data)/2], data[:10], append(bytes.Repeat([]byte{0xFF}, 4000), data[4000:]...)} {
		if r, err := (mmdb.Format{}).Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
			if err := r.Check(context.Background()); err == nil {
				t.Errorf("a broken file of %d bytes opened and checked clean", len(bad))
			}
		}
	}
}
