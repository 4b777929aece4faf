//go:build !linux

package geo

// hugePages is advice Linux alone takes (huge_linux.go).
func hugePages[T any](s []T) {}
