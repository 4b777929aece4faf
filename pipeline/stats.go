package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// inputStats gathers what the checks of one input's assets need, in the
// build's one pass over the input: records per value of each by: column,
// nulls per column (in all and per value), and the range of each bounded
// column. It works a batch and a column at a time: a column without nulls
// costs nothing for a null check (Arrow keeps the count), and a by: column
// costs one comparison per row while values repeat, as they do in Spark
// output partitioned or sorted by that column.
//
// Footer statistics are not used: Delta deletion vectors drop rows the
// footers still count, and column mapping renames the columns they name,
// so counts from the records are the only ones right for every input.
type inputStats struct {
	rows   int64
	groups map[string]*grouping
	nulls  map[string]*nullCount
	ranges map[boundsKey]*rangeStats
}

// grouping numbers the values of a by: column as they appear.
type grouping struct {
	col   int    // -1: not in the input
	bad   string // why the column cannot be grouped; "" when it can
	max   int    // values counted before giving up
	over  bool   // more values than max: counts stop
	ids   map[string]int32
	null  int32     // the id of the null value; -1 until met
	vals  []*string // each id's value, nil for null
	rows  []int64   // records per id
	batch []int32   // the current batch's ids, one per row; -1 once over
	buf   []byte
	last  []byte
	lid   int32
}

// nullCount counts one column's nulls, and per value of by: columns.
type nullCount struct {
	col   int
	total int64
	by    map[string][]int64 // by column -> nulls per value id
}

type boundsKey struct {
	col    string
	lo, hi float64 // ±Inf when unbounded
}

// rangeStats is one bounded column's range and the values outside bounds.
type rangeStats struct {
	col      int
	bad      string
	n        int64 // values seen (nulls are not values)
	min, max float64
	outside  int64 // outside [lo, hi], NaN included
}

func newInputStats(schema *arrow.Schema, checks []*assetChecks) *inputStats {
	s := &inputStats{groups: map[string]*grouping{}, nulls: map[string]*nullCount{}, ranges: map[boundsKey]*rangeStats{}}
	col := func(name string) int {
		if idx := schema.FieldIndices(name); len(idx) > 0 {
			return idx[0]
		}
		return -1
	}
	group := func(name string, max int) {
		if name == "" {
			return
		}
		if g, ok := s.groups[name]; ok {
			g.max = maxInt(g.max, max)
			return
		}
		g := &grouping{col: col(name), max: max, ids: map[string]int32{}, null: -1}
		if g.col >= 0 {
			g.bad = groupable(schema.Field(g.col).Type)
		}
		s.groups[name] = g
	}
	for _, c := range checks {
		if c.Rows != nil {
			group(c.Rows.By, c.MaxPartitions)
		}
		for name, n := range c.Nulls {
			nc, ok := s.nulls[name]
			if !ok {
				nc = &nullCount{col: col(name), by: map[string][]int64{}}
				s.nulls[name] = nc
			}
			if n.By != "" {
				group(n.By, c.MaxPartitions)
				nc.by[n.By] = nil
			}
		}
		for name, b := range c.Bounds {
			k := b.key(name)
			if _, ok := s.ranges[k]; !ok {
				r := &rangeStats{col: col(name), min: math.Inf(1), max: math.Inf(-1)}
				if r.col >= 0 {
					r.bad = numeric(schema.Field(r.col).Type)
				}
				s.ranges[k] = r
			}
		}
	}
	return s
}

func (b *BoundsCheck) key(col string) boundsKey {
	k := boundsKey{col: col, lo: math.Inf(-1), hi: math.Inf(1)}
	if b.Min != nil {
		k.lo = *b.Min
	}
	if b.Max != nil {
		k.hi = *b.Max
	}
	return k
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// add counts one batch.
func (s *inputStats) add(rec arrow.RecordBatch) {
	n := int(rec.NumRows())
	s.rows += int64(n)
	for _, g := range s.groups {
		if g.col >= 0 && g.bad == "" {
			g.add(rec.Column(g.col), n)
		}
	}
	for _, nc := range s.nulls {
		if nc.col < 0 {
			continue
		}
		a := rec.Column(nc.col)
		k := a.NullN()
		nc.total += int64(k)
		if k == 0 || len(nc.by) == 0 {
			continue
		}
		for by, counts := range nc.by {
			g := s.groups[by]
			if g.col < 0 || g.bad != "" || g.over {
				continue
			}
			if len(counts) < len(g.vals) {
				counts = append(counts, make([]int64, len(g.vals)-len(counts))...)
				nc.by[by] = counts
			}
			for i := range n {
				if a.IsNull(i) {
					counts[g.batch[i]]++
				}
			}
		}
	}
	for k, r := range s.ranges {
		if r.col >= 0 && r.bad == "" {
			r.add(rec.Column(r.col), k.lo, k.hi)
		}
	}
}

// groupable says why a column cannot be a by: column, or "".
func groupable(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.BOOL, arrow.DATE32,
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return ""
	}
	return fmt.Sprintf("it is %s; by: needs a string, integer, boolean or date column", dt)
}

// keyFunc gives a function that encodes row i's value of a as a map key.
func (g *grouping) keyFunc(a arrow.Array) func(int) []byte {
	switch a := a.(type) {
	case *array.String:
		return func(i int) []byte { return append(g.buf[:0], a.Value(i)...) }
	case *array.LargeString:
		return func(i int) []byte { return append(g.buf[:0], a.Value(i)...) }
	case *array.Binary:
		return func(i int) []byte { return append(g.buf[:0], a.Value(i)...) }
	case *array.LargeBinary:
		return func(i int) []byte { return append(g.buf[:0], a.Value(i)...) }
	case *array.Boolean:
		return func(i int) []byte { return strconv.AppendBool(g.buf[:0], a.Value(i)) }
	case *array.Date32:
		return func(i int) []byte {
			return time.Unix(int64(a.Value(i))*86400, 0).UTC().AppendFormat(g.buf[:0], time.DateOnly)
		}
	case *array.Int8:
		return func(i int) []byte { return strconv.AppendInt(g.buf[:0], int64(a.Value(i)), 10) }
	case *array.Int16:
		return func(i int) []byte { return strconv.AppendInt(g.buf[:0], int64(a.Value(i)), 10) }
	case *array.Int32:
		return func(i int) []byte { return strconv.AppendInt(g.buf[:0], int64(a.Value(i)), 10) }
	case *array.Int64:
		return func(i int) []byte { return strconv.AppendInt(g.buf[:0], a.Value(i), 10) }
	case *array.Uint8:
		return func(i int) []byte { return strconv.AppendUint(g.buf[:0], uint64(a.Value(i)), 10) }
	case *array.Uint16:
		return func(i int) []byte { return strconv.AppendUint(g.buf[:0], uint64(a.Value(i)), 10) }
	case *array.Uint32:
		return func(i int) []byte { return strconv.AppendUint(g.buf[:0], uint64(a.Value(i)), 10) }
	case *array.Uint64:
		return func(i int) []byte { return strconv.AppendUint(g.buf[:0], a.Value(i), 10) }
	}
	return nil
}

// add numbers the batch's values, counting records per value.
func (g *grouping) add(a arrow.Array, n int) {
	if cap(g.batch) < n {
		g.batch = make([]int32, n)
	}
	g.batch = g.batch[:n]
	if g.over {
		return
	}
	key := g.keyFunc(a)
	if key == nil {
		g.bad = fmt.Sprintf("it is %s; by: needs a string, integer, boolean or date column", a.DataType())
		return
	}
	g.last = g.last[:0]
	g.lid = -1
	nulls := a.NullN() > 0
	for i := range n {
		var id int32
		if nulls && a.IsNull(i) {
			if g.null < 0 {
				if !g.grow(nil) {
					return
				}
				g.null = int32(len(g.vals) - 1)
			}
			id = g.null
		} else {
			k := key(i)
			g.buf = k
			if g.lid >= 0 && string(k) == string(g.last) {
				id = g.lid
			} else {
				var ok bool
				if id, ok = g.ids[string(k)]; !ok {
					v := string(k)
					if !g.grow(&v) {
						return
					}
					id = int32(len(g.vals) - 1)
					g.ids[v] = id
				}
				g.last, g.lid = append(g.last[:0], k...), id
			}
		}
		g.batch[i] = id
		g.rows[id]++
	}
}

// grow adds a value, or gives up counting when there are too many.
func (g *grouping) grow(v *string) bool {
	if len(g.vals) >= g.max {
		g.over = true
		g.ids, g.vals, g.rows = nil, nil, nil
		return false
	}
	g.vals = append(g.vals, v)
	g.rows = append(g.rows, 0)
	return true
}

// numeric says why a column cannot be bounded, or "".
func numeric(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return ""
	}
	return fmt.Sprintf("it is %s; bounds need a numeric column", dt)
}

func (r *rangeStats) add(a arrow.Array, lo, hi float64) {
	nulls := a.NullN() > 0
	see := func(v float64) {
		r.n++
		if v < r.min {
			r.min = v
		}
		if v > r.max {
			r.max = v
		}
		if !(v >= lo && v <= hi) { // NaN is outside
			r.outside++
		}
	}
	switch a := a.(type) {
	case *array.Float64:
		for i, v := range a.Float64Values() {
			if !nulls || a.IsValid(i) {
				see(v)
			}
		}
	case *array.Float32:
		for i, v := range a.Float32Values() {
			if !nulls || a.IsValid(i) {
				see(float64(v))
			}
		}
	case *array.Int64:
		for i, v := range a.Int64Values() {
			if !nulls || a.IsValid(i) {
				see(float64(v))
			}
		}
	case *array.Int32:
		for i, v := range a.Int32Values() {
			if !nulls || a.IsValid(i) {
				see(float64(v))
			}
		}
	default:
		// The narrower and rarer types, through one slower path.
		for i := range a.Len() {
			if nulls && a.IsNull(i) {
				continue
			}
			switch a := a.(type) {
			case *array.Int8:
				see(float64(a.Value(i)))
			case *array.Int16:
				see(float64(a.Value(i)))
			case *array.Uint8:
				see(float64(a.Value(i)))
			case *array.Uint16:
				see(float64(a.Value(i)))
			case *array.Uint32:
				see(float64(a.Value(i)))
			case *array.Uint64:
				see(float64(a.Value(i)))
			case *array.Decimal128:
				see(a.Value(i).ToFloat64(a.DataType().(*arrow.Decimal128Type).Scale))
			case *array.Decimal256:
				see(a.Value(i).ToFloat64(a.DataType().(*arrow.Decimal256Type).Scale))
			default:
				r.bad = fmt.Sprintf("it is %s; bounds need a numeric column", a.DataType())
				return
			}
		}
	}
}
