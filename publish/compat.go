package publish

import (
	"errors"
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// ErrIncompatible is a release the asking server cannot load: its manifest's
// requires.server does not admit the server's version.
var ErrIncompatible = errors.New("release needs another server version")

// CheckServer reports whether a server of the given version can load the
// release. A release that states no requirement loads on any server. The
// constraint is semver, such as ">=1.4.0, <2".
func (m *Manifest) CheckServer(version string) error {
	if m.Requires == nil || m.Requires.Server == "" || version == "" {
		return nil
	}
	c, err := semver.NewConstraint(m.Requires.Server)
	if err != nil {
		return fmt.Errorf("%w: release %s: requires.server %q: %v", ErrVerify, m.Release, m.Requires.Server, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return fmt.Errorf("--server-version %q is not a semantic version: %w", version, err)
	}
	if !c.Check(v) {
		return fmt.Errorf("%w: release %s requires server %s, this box runs %s; deploy a matching binary first, or pull another release", ErrIncompatible, m.Release, m.Requires.Server, version)
	}
	return nil
}
