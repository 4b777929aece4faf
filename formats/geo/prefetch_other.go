//go:build !amd64 && !arm64

package geo

// prefetch is a hint this architecture goes without (prefetch.go).
func prefetch(addrs []uintptr) {}
