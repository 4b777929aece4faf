// Package all wires every format into one registry. Add a format here, and
// nowhere else.
package all

import (
	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/arrowipc"
	"github.com/lockstep-data/lockstep/formats/file"
	"github.com/lockstep-data/lockstep/formats/fst"
	"github.com/lockstep-data/lockstep/formats/geo"
	"github.com/lockstep-data/lockstep/formats/kv"
	"github.com/lockstep-data/lockstep/formats/mmdb"
)

// Registry returns the registry of every format lockstep writes.
func Registry() *formats.Registry {
	return formats.NewRegistry(
		arrowipc.Format{},
		file.Format{},
		fst.Format{},
		geo.Format{},
		kv.Format{},
		mmdb.Format{},
	)
}
