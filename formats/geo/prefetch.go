//go:build amd64 || arm64

package geo

// prefetch asks the CPU to bring the cache line at each address into
// cache, and goes on at once: unlike a load, a prefetch does not hold back
// the instructions after it until its line comes, so LookupAll can have
// the lines of many points on their way at the same time. Go has no
// prefetch of its own outside the runtime, hence a few lines of assembly
// (PREFETCHT0, PRFM PLDL1KEEP); it takes a list, because each call from Go
// costs the spills of the caller's registers.
//
//go:noescape
func prefetch(addrs []uintptr)
