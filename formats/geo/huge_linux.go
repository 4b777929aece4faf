package geo

import (
	"syscall"
	"unsafe"
)

// madvCollapse is MADV_COLLAPSE (Linux 6.1): back a range with huge pages
// now.
const madvCollapse = 25

// hugePages asks Linux to back the whole 2 MiB pages inside s with huge
// pages, at once (MADV_COLLAPSE). A lookup reads a few words at random in
// each of arrays of hundreds of megabytes, so with 4 KiB pages nearly every
// read misses the TLB as well as the cache; the Go heap gets huge pages
// only where the system gives them to every process (THP "always"). It is
// advice: where the kernel is older, or THP is off, nothing changes.
func hugePages[T any](s []T) {
	if len(s) == 0 {
		return
	}
	const huge = 2 << 20
	start := uintptr(unsafe.Pointer(&s[0]))
	end := start + uintptr(len(s))*unsafe.Sizeof(s[0])
	lo, hi := (start+huge-1)&^(huge-1), end&^(huge-1)
	if hi <= lo {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, madvCollapse)
}
